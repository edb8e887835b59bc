"""The portal's pages for a signed-in customer user: what they show (exact amounts) and what they do."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from apps.accounts.models import Customer, CustomerInvitation, CustomerMembership
from apps.accounts.tests.factories import UserFactory
from apps.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_dashboard_shows_plan_next_invoice_usage_balance_and_amount_due(client, world):
    client.force_login(world.a.user)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    text = _text(response)
    assert "Cloud — Starter" in text
    assert "Next invoice on 1 Apr 2026: 49.06 USD" in text  # 49.00 fee + 6 API calls at 0.01
    assert "API calls so far this period: 6" in text
    assert re.search(r"Amount due 39.00 USD", text)  # 49.00 less the 10.00 credit note
    assert re.search(r"Credit balance 0.00 USD", text)
    assert 'aria-label="API calls per day, from 1 Mar 2026: peak 3"' in response.content.decode()


def test_anonymous_user_is_sent_to_sign_in(client, world):
    response = client.get(reverse("portal:invoices"))
    assert response.status_code == 302
    assert response["Location"] == "/portal/login/?next=/portal/invoices/"


def test_sign_in_with_password(client, world):
    response = client.post(
        reverse("portal:login"), {"username": world.a.user.username, "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    client.logout()
    bad = client.post(reverse("portal:login"), {"username": world.b.user.username, "password": "wrong"})
    assert "Your email or password is not right" in bad.content.decode()


def test_magic_link_signs_in_once(client, world, django_capture_on_commit_callbacks, eager_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal:login-link"), {"email": world.a.user.email})
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/portal/login/magic/\?sesame=\S+", mail.outbox[0].body).group(0)
    path = link.split("127.0.0.1:8000", 1)[1]
    assert client.get(path).status_code == 302
    assert client.get(reverse("portal:dashboard")).status_code == 200
    client.logout()
    assert client.get(path).status_code == 403  # one time only


def test_magic_link_is_never_sent_for_unknown_or_staff_addresses(
    client, world, django_capture_on_commit_callbacks, eager_tasks
):
    staff = UserFactory(username="finance", email="finance@seller.example", is_staff=True)
    CustomerMembership.objects.create(customer=world.a.customer, user=staff)
    with django_capture_on_commit_callbacks(execute=True):
        unknown = client.post(reverse("portal:login-link"), {"email": "nobody@example.com"})
        staff_response = client.post(reverse("portal:login-link"), {"email": staff.email})
    assert unknown.status_code == staff_response.status_code == 200
    assert mail.outbox == []


def test_password_reset_email_for_customer_users_only(client, world, django_capture_on_commit_callbacks, eager_tasks):
    staff = UserFactory(username="finance", email="finance@seller.example", is_staff=True)
    CustomerMembership.objects.create(customer=world.a.customer, user=staff)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portal:password-reset"), {"email": staff.email})
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal:password-reset"), {"email": world.a.user.email.upper()})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [world.a.user.email]
    link = re.search(r"http://testserver(/portal/password/reset/\S+)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert 'name="new_password1"' in form_page.content.decode()  # the token made by the task works


def test_invoice_pdf_download(client, world):
    client.force_login(world.a.user)
    response = client.get(reverse("portal:invoice-pdf", args=[world.a.invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{world.a.invoice.number}.pdf"'
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_invoice_filter(client, world):
    client.force_login(world.a.user)
    open_page = client.get(reverse("portal:invoices"), {"status": "open"}).content.decode()
    paid_page = client.get(reverse("portal:invoices"), {"status": "paid"}).content.decode()
    assert world.a.invoice.number in open_page
    assert f"Download {world.a.invoice.number}" in open_page
    assert f"Download {world.a.invoice.number}" not in paid_page


def test_change_plan_preview_then_confirm(client, world):
    client.force_login(world.a.user)
    url = reverse("portal:subscription-change", args=[world.a.subscription.pk])
    preview = client.post(url, {"plan": world.pro.pk, "quantity": 1})
    text = _text(preview)
    assert "Total (before tax) 25.81 USD" in text  # 99.00 × 16/31 − 49.00 × 16/31, each rounded once
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk  # nothing changed yet
    token = re.search(r'name="preview_token" value="([^"]+)"', preview.content.decode()).group(1)
    done = client.post(url, {"plan": world.pro.pk, "quantity": 1, "preview_token": token})
    assert done.status_code == 302
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.pro.pk


def test_change_with_a_forged_token_changes_nothing(client, world):
    client.force_login(world.a.user)
    url = reverse("portal:subscription-change", args=[world.a.subscription.pk])
    response = client.post(url, {"plan": world.pro.pk, "quantity": 1, "preview_token": "forged"})
    assert response.status_code == 200
    assert "The preview has expired or does not match this change" in response.content.decode()
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk


def test_plan_not_allowed_is_refused(client, world):
    from apps.portal.selectors import portal_configuration

    portal_configuration().allowed_plans.set([world.starter])
    client.force_login(world.a.user)
    url = reverse("portal:subscription-change", args=[world.a.subscription.pk])
    response = client.post(url, {"plan": world.pro.pk, "quantity": 1})
    assert "Select a valid choice" in response.content.decode()
    assert Subscription.objects.get(pk=world.a.subscription.pk).plan_id == world.starter.pk


def test_cancel_at_period_end_then_resume(client, world):
    client.force_login(world.a.user)
    pk = world.a.subscription.pk
    response = client.post(
        reverse("portal:subscription-cancel", args=[pk]), {"reason": "Too expensive", "comment": "x"}
    )
    assert response.status_code == 302
    subscription = Subscription.objects.get(pk=pk)
    assert (subscription.cancel_at_period_end, subscription.cancellation_reason) == (True, "Too expensive — x")
    client.post(reverse("portal:subscription-resume", args=[pk]))
    subscription = Subscription.objects.get(pk=pk)
    assert (subscription.cancel_at_period_end, subscription.cancellation_reason) == (False, "")


def test_billing_details_bad_tax_id_is_rejected_and_changes_nothing(client, world):
    client.force_login(world.a.user)
    url = reverse("portal:billing")
    data = {
        "name": "Alpha Labs", "email": "billing@alpha.example", "billing_emails": "ap@alpha.example",
        "address_line1": "1 Road", "city": "Berlin", "postal_code": "10115", "country": "DE",
        "tax_id": "DE123", "tax_id_type": "", "preferred_language": "en",
    }  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 200
    assert 'class="error"' in response.content.decode()
    customer = Customer.objects.get(pk=world.a.customer.pk)
    assert (customer.country.code, customer.tax_id, customer.email) == ("GB", "", world.a.customer.email)
    response = client.post(url, {**data, "tax_id": "DE136695976"})
    assert response.status_code == 302
    customer = Customer.objects.get(pk=world.a.customer.pk)
    assert (customer.country.code, customer.tax_id, customer.tax_id_status) == ("DE", "DE136695976", "valid")
    assert [c.email for c in customer.billing_contacts.all()] == ["ap@alpha.example"]


def test_viewer_reads_but_cannot_change(client, world):
    viewer = UserFactory(username="viewer", email="viewer@alpha.example")
    CustomerMembership.objects.create(customer=world.a.customer, user=viewer, role="viewer")
    client.force_login(viewer)
    assert client.get(reverse("portal:dashboard")).status_code == 200
    assert client.get(reverse("portal:billing")).status_code == 403
    response = client.post(reverse("portal:subscription-cancel", args=[world.a.subscription.pk]), {"reason": ""})
    assert response.status_code == 403
    assert Subscription.objects.get(pk=world.a.subscription.pk).cancel_at_period_end is False


def test_owner_invites_a_teammate(client, world, django_capture_on_commit_callbacks, eager_tasks):
    """Inviting makes a pending invitation and emails its link; nobody joins before accepting
    (test_invitations.py walks the acceptance)."""
    client.force_login(world.a.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal:team"), {"email": "New.Person@Alpha.example", "role": "billing"})
    assert response.status_code == 302
    invitation = CustomerInvitation.objects.get(customer=world.a.customer)
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "new.person@alpha.example",
        "billing",
        world.a.user,
    )
    assert not CustomerMembership.objects.filter(user__email="new.person@alpha.example").exists()
    assert mail.outbox[0].to == ["new.person@alpha.example"]
    assert "/portal/invitations/" in mail.outbox[0].body
    assert "/portal/login/magic/" not in mail.outbox[0].body


def test_user_of_two_customers_chooses_then_switches(client, world):
    CustomerMembership.objects.create(customer=world.b.customer, user=world.a.user, role="viewer")
    client.force_login(world.a.user)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:choose") + "?next=/portal/"
    client.post(reverse("portal:choose"), {"customer": world.a.customer.pk, "next": "/portal/"})
    assert "Alpha Labs" in _text(client.get(reverse("portal:dashboard")))
    client.post(reverse("portal:switch"), {"customer": world.b.customer.pk})
    page = client.get(reverse("portal:invoices")).content.decode()
    assert f"Download {world.b.invoice.number}" in page
    assert f"Download {world.a.invoice.number}" not in page


def test_language_switch_to_simplified_chinese(client, world):
    client.force_login(world.a.user)
    client.post(reverse("portal:language"), {"language": "zh-hans", "next": "/portal/"})
    response = client.get(reverse("portal:dashboard"))
    text = _text(response)
    assert '<html lang="zh-hans">' in response.content.decode()
    assert "应付金额 US$39.00" in text
    assert "2026年4月1日" in text
    assert CustomerMembership.objects.get(customer=world.a.customer, user=world.a.user).language == "zh-hans"


def test_invoice_list_queries_do_not_grow_with_invoices(client, world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.invoices.tests.factories import make_manual_invoice

    client.force_login(world.a.user)
    url = reverse("portal:invoices")
    client.get(url)  # warm: session, configuration row
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    make_manual_invoice(customer=world.a.customer)
    make_manual_invoice(customer=world.a.customer)
    with CaptureQueriesContext(connection) as three:
        response = client.get(url)
    assert response.content.decode().count("Download INV-") == 3
    assert len(three) == len(one)
