from django import forms
from django.utils.translation import gettext_lazy as _

from .selectors import AuditFilter, audit_model_choices


class AuditTrailFilterForm(forms.Form):
    model = forms.ChoiceField(required=False)
    object_id = forms.CharField(required=False, max_length=64, label=_("Object ID"))
    actor = forms.CharField(
        required=False, max_length=150, help_text=_('Part of a username or a system actor; "system" for the product.')
    )
    date_from = forms.DateField(required=False, label=_("From (UTC)"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(
        required=False, label=_("To (UTC, included)"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", _("All")), *audit_model_choices()]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("object_id") and not cleaned.get("model"):
            self.add_error("model", _("Choose the kind of object the ID belongs to."))
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(
            model=data.get("model") or "",
            object_id=(data.get("object_id") or "").strip(),
            actor=(data.get("actor") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )
