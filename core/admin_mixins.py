"""Admin behaviour shared by the apps."""

from django.http import HttpResponseRedirect
from django.urls import reverse


class SingletonAdmin:
    """A settings row that exists once: no add after the first, no delete, the list opens the row."""

    def has_add_permission(self, request):
        return not self.model.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        instance = self.model.load()
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
        )


class ReadOnlyAdmin:
    """Records written by the system (journal, caches): visible, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
