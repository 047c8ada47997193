"""The routing cache (domains, aliases, allowed senders for a few seconds) is forgotten again
when a change commits, so a reader that loaded the state before the commit does not keep it."""

import pytest

from mailroom.routing import services
from mailroom.routing.models import Alias, AliasDomain

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    services.clear_cache()
    yield
    services.clear_cache()


def test_a_saved_alias_clears_the_cache_again_on_commit(acme, django_capture_on_commit_callbacks):
    domain = AliasDomain.objects.create(company=acme, name="acme.test")
    with django_capture_on_commit_callbacks() as on_commit:
        alias = services.save_alias(Alias(company=acme, domain=domain, local_part="deals",
                                          record_type="crm.lead"), actor=None)
    # a reader loads the cache before the commit; then the row changes behind its back
    assert services.resolve("deals@acme.test").alias == alias
    Alias.objects.filter(pk=alias.pk).update(active=False)
    assert services.resolve("deals@acme.test") is not None  # still cached
    assert on_commit, "no cache clear waits for the commit"
    for callback in on_commit:
        callback()
    assert services.resolve("deals@acme.test") is None


def test_a_deleted_domain_clears_the_cache_again_on_commit(acme,
                                                           django_capture_on_commit_callbacks):
    domain = AliasDomain.objects.create(company=acme, name="acme.test", accept_unknown=True)
    with django_capture_on_commit_callbacks() as on_commit:
        services.delete(domain, actor=None)
    AliasDomain.objects.create(company=acme, name="acme.test", accept_unknown=True)
    assert services.resolve("anyone@acme.test") is not None  # loaded before the commit
    AliasDomain.objects.filter(name="acme.test").delete()
    for callback in on_commit:
        callback()
    assert services.resolve("anyone@acme.test") is None


def test_a_clear_while_loading_is_not_lost(acme, monkeypatch):
    """A change that commits while a reader is loading: the reader uses what it read once,
    and the next reader loads again."""
    AliasDomain.objects.create(company=acme, name="acme.test", accept_unknown=True)
    cache = services._cache
    load = Alias.objects.filter

    def filter_then_commit_elsewhere(*args, **kwargs):
        cache.clear()  # another thread's change committed meanwhile
        return load(*args, **kwargs)

    monkeypatch.setattr(Alias.objects, "filter", filter_then_commit_elsewhere)
    assert services.resolve("anyone@acme.test") is not None
    monkeypatch.undo()
    AliasDomain.objects.filter(name="acme.test").delete()
    assert services.resolve("anyone@acme.test") is None
