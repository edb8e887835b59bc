"""Each staff user picks the admin's language (English or Simplified Chinese); the admin speaks it
whatever the browser asks for, and the portal keeps its own language handling."""

import pytest
from django.urls import reverse

from apps.accounts.models import StaffPreference
from apps.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(username="li.na", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def test_a_staff_user_who_chose_chinese_gets_the_admin_in_chinese_whatever_the_browser_asks(client, staff):
    StaffPreference.objects.create(user=staff, language="zh-hans")

    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "zh-hans"
    page = response.content.decode()
    assert '<html lang="zh-hans"' in page
    assert "注销" in page  # Django's own "Log out"
    assert "| 账单门户管理后台</title>" in page  # the site title, "Billing Portal admin"


def test_a_staff_user_who_chose_english_gets_english_from_a_chinese_browser(client, staff):
    StaffPreference.objects.create(user=staff, language="en")

    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.headers["Content-Language"] == "en"
    assert "Log out" in response.content.decode()


def test_without_a_choice_the_admin_follows_the_browser(client, staff):
    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.headers["Content-Language"] == "zh-hans"


def test_the_header_links_to_the_choice_and_saving_it_goes_back_to_the_page(client, staff):
    changelist = reverse("admin:invoices_invoice_changelist")
    page = client.get(changelist, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'href="{reverse("staff-language")}?next={changelist.replace("/", "%2F")}"' in page
    assert "Language: <span" in page

    assert client.get(reverse("staff-language"), {"next": changelist}).status_code == 200
    response = client.post(reverse("staff-language"), {"language": "zh-hans", "next": changelist})

    assert response.status_code == 302
    assert response["Location"] == changelist
    assert StaffPreference.objects.get(user=staff).language == "zh-hans"
    assert client.get(changelist, HTTP_ACCEPT_LANGUAGE="en").headers["Content-Language"] == "zh-hans"

    client.post(reverse("staff-language"), {"language": "en"})
    assert StaffPreference.objects.get(user=staff).language == "en"
    assert StaffPreference.objects.count() == 1


def test_an_unknown_language_is_refused_and_nothing_is_saved(client, staff):
    response = client.post(reverse("staff-language"), {"language": "fr"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "Use one of: en, zh-hans." in response.content.decode()
    assert not StaffPreference.objects.exists()


def test_an_address_elsewhere_is_not_followed_after_saving(client, staff):
    response = client.post(reverse("staff-language"), {"language": "en", "next": "https://evil.example/"})

    assert response["Location"] == reverse("admin:index")


def test_someone_signed_out_is_sent_to_sign_in(client):
    response = client.post(reverse("staff-language"), {"language": "zh-hans"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not StaffPreference.objects.exists()


def test_the_choice_does_not_reach_the_portal(client, staff):
    StaffPreference.objects.create(user=staff, language="zh-hans")

    response = client.get(reverse("portal:login"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.headers["Content-Language"] == "en"


def test_every_admin_list_and_page_renders_in_chinese(client, staff):
    """Each registered model's list, add page and first object's page, for a staff user who chose
    Chinese (a lazy text formatted the wrong way would fail here, not in front of a user)."""
    from django.contrib import admin

    import billing_portal.urls  # noqa: F401  (the admin site as served)
    from apps.invoices.tests.factories import make_draft_invoice, make_manual_invoice

    make_manual_invoice()
    make_draft_invoice()
    StaffPreference.objects.create(user=staff, language="zh-hans")
    pages = 0
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        urls = [reverse("admin:{}_{}_changelist".format(*info))]
        if model_admin.has_add_permission(_request(staff)) and model._meta.model_name != "portalconfiguration":
            urls.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
        for url in urls:
            response = client.get(url, HTTP_ACCEPT_LANGUAGE="en", follow=True)  # a singleton redirects
            assert response.status_code == 200, (url, response.status_code)
            assert response.headers["Content-Language"] == "zh-hans", url
            pages += 1
    assert client.get(reverse("finance-dashboard")).status_code == 200
    assert pages > 60


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request
