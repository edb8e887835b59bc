from . import admin_dunning  # noqa: F401 - dunning's admin pages
