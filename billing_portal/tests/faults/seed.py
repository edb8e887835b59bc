"""Data for the fault tests, written by a Django subprocess into a throwaway database:
`python -m billing_portal.tests.faults.seed subscriptions 120` or `... ingestion`. Prints JSON."""

import json
import sys


def main() -> None:
    import django

    django.setup()

    from djmoney.money import Money

    from apps.accounts.credentials import api_key_create, user_token_create
    from apps.accounts.tests.factories import CustomerFactory, UserFactory
    from apps.catalog.services import billable_metric_create
    from apps.catalog.tests.factories import PlanFactory
    from apps.subscriptions.periods import utc
    from apps.subscriptions.tests.factories import make_subscription

    what = sys.argv[1]
    out: dict = {}
    if what == "subscriptions":
        plan = PlanFactory(prices=[Money("12.00", "USD")])
        ids = [make_subscription(plan=plan, started_at=utc(2026, 2, 1, 12)).pk for _ in range(int(sys.argv[2]))]
        out["subscription_ids"] = ids
    elif what == "ingestion":
        CustomerFactory(external_id="acme", currency="USD")
        billable_metric_create(code="api_calls", name="API calls")
        _, out["api_key"] = api_key_create(name="faults")
        staff = UserFactory(username="fault-staff", is_staff=True, is_superuser=True)
        out["token"] = user_token_create(user_id=staff.pk, name="faults")[1]
    else:
        raise SystemExit(f"unknown seed {what!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
