from decimal import Decimal

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_noop

from apps.invoices.templatetags.invoice_format import bill_date, quantity

register = template.Library()

# Status labels as the portal shows them (the models' labels are in English for staff).
STATUS_LABELS = {
    "Open": gettext_noop("Open"),
    "Paid": gettext_noop("Paid"),
    "Void": gettext_noop("Void"),
    "Uncollectible": gettext_noop("Uncollectible"),
    "Active": gettext_noop("Active"),
    "Trialing": gettext_noop("Trialing"),
    "Past due": gettext_noop("Past due"),
    "Paused": gettext_noop("Paused"),
    "Canceled": gettext_noop("Canceled"),
    "Incomplete": gettext_noop("Incomplete"),
}


@register.filter
def status_label(label) -> str:
    return gettext(STATUS_LABELS.get(str(label), str(label)))


CHART_WIDTH, CHART_HEIGHT = 600, 120


@register.simple_tag
def usage_chart(metric) -> str:
    """A bar chart of a metric's daily usage as inline SVG (no script), described for screen readers."""
    days = metric.days
    peak = metric.peak or Decimal(1)
    width = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, (day, value) in enumerate(days):
        height = float(value / peak) * (CHART_HEIGHT - 4) if peak else 0
        bars.append(
            (
                f"{index * width + 1:.1f}",
                f"{CHART_HEIGHT - height:.1f}",
                f"{max(width - 2, 1):.1f}",
                f"{height:.1f}",
                f"{bill_date(day)}: {quantity(value)}",
            )
        )
    label = gettext("%(name)s per day, from %(start)s: peak %(peak)s") % {
        "name": metric.name,
        "start": bill_date(days[0][0]) if days else "",
        "peak": quantity(metric.peak),
    }
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg class="usage-chart" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" aria-label="{}">{}</svg>',
        CHART_WIDTH,
        CHART_HEIGHT,
        label,
        rects,
    )
