"""The portal configuration in the admin: one row, straight to its form, bad input refused."""

import pytest

from apps.portal.models import PortalConfiguration
from apps.portal.selectors import portal_configuration

pytestmark = pytest.mark.django_db


def test_changelist_opens_the_one_configuration(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/portal/portalconfiguration/")
    configuration = PortalConfiguration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/portal/portalconfiguration/{configuration.pk}/change/"
    assert client.get("/admin/portal/portalconfiguration/add/").status_code == 403


def test_bad_colour_is_a_form_error_and_changes_nothing(client, superuser):
    configuration = portal_configuration()
    client.force_login(superuser)
    response = client.post(
        f"/admin/portal/portalconfiguration/{configuration.pk}/change/",
        {
            "accent_colour": "blue",
            "proration_behavior": "prorate",
            "cancellation_mode": "at_period_end",
            "cancellation_reasons": "[]",
        },
    )
    assert response.status_code == 200
    assert "Give a colour as #RRGGBB" in response.content.decode()
    assert PortalConfiguration.objects.get().accent_colour == "#1d4ed8"


def test_staff_without_the_permission_cannot_see_it(client, make_staff):
    portal_configuration()
    client.force_login(make_staff("accounts.view_customer"))
    assert client.get("/admin/portal/portalconfiguration/1/change/").status_code == 403
