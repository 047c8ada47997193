from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from mailroom.business.timestamps import stamp, with_stamps
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned


class Priority(models.TextChoices):
    LOW = "0", "Low"
    MEDIUM = "1", "Medium"
    HIGH = "2", "High"
    VERY_HIGH = "3", "Very high"


class Lead(MailThread, CompanyOwned):
    class Stage(models.TextChoices):
        NEW = "new", "New"
        QUALIFIED = "qualified", "Qualified"
        PROPOSITION = "proposition", "Proposition"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    name = models.CharField("opportunity", max_length=200)
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="leads", verbose_name="customer")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="salesperson")
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.NEW)
    email_from = models.CharField("email", max_length=254, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    expected_revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"),
                                           validators=[MinValueValidator(Decimal("0"))])
    probability = models.PositiveSmallIntegerField(default=10,
                                                   validators=[MaxValueValidator(100)])
    priority = models.CharField(max_length=1, choices=Priority.choices, default=Priority.LOW)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    won_at = models.DateTimeField("won on", null=True, blank=True, editable=False)

    tracked_fields = ("stage", "user", "partner", "expected_revenue")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        changed = [f for f in ("won_at",) if stamp(self, f, reached=self.stage == self.Stage.WON)]
        super().save(*args, **with_stamps(kwargs, changed))
