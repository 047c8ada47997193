"""The templating app's worker step (core.steps discovers this module)."""

from mailroom.core.steps import register_step
from mailroom.templating.mass_engine import mass_step

register_step("templating.mass")(mass_step)
