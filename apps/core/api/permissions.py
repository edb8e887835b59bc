from rest_framework.exceptions import MethodNotAllowed
from rest_framework.permissions import DjangoModelPermissions


class StaffModelPermissions(DjangoModelPermissions):
    """Staff users holding the model permission for the action, reads included (view_<model>).

    A viewset may name the permissions of its extra actions in `action_permissions`
    (e.g. `{"finalize": ["invoices.change_invoice"]}`); those replace the per-method defaults.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_staff):
            return False
        if request.method not in self.perms_map or getattr(view, request.method.lower(), None) is None:
            # A method the view has no handler for (TRACE, or PUT on a list) is 405, before any model
            # lookup: views without a queryset (the cards API) answer it too.
            raise MethodNotAllowed(request.method)
        if request.method == "OPTIONS":
            return True  # the endpoint's description: no model permission needed (and none to look up)
        action_permissions = getattr(view, "action_permissions", {})
        action = getattr(view, "action", None)
        if action in action_permissions:
            return user.has_perms(action_permissions[action])
        return super().has_permission(request, view)
