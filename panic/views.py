"""The dashboard's panic and reset buttons: session POST forms (CSRF-checked by the middleware).

Thin edges: call one service, put its answer in a message, go back to the status page.
Staff only, like the API (`controlpanel.authentication.IsOwner`).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from panic.errors import PanicResetRefused
from panic.services import panic_reset, panic_text, panic_trigger


def _staff_only(request):
    if not request.user.is_staff:
        return HttpResponseForbidden(
            "Only staff users may trigger or reset the panic.", content_type="text/plain"
        )
    return None


def _by(request) -> str:
    return f"dashboard:{request.user.get_username()}"


@require_POST
@login_required
def panic_button(request):
    if refused := _staff_only(request):
        return refused
    reason = request.POST.get("reason", "").strip()[:200] or "dashboard panic button"
    result = panic_trigger(by=_by(request), reason=reason)
    level = messages.SUCCESS if result.flat else messages.ERROR
    messages.add_message(request, level, panic_text(result))
    return redirect("dashboard")


@require_POST
@login_required
def panic_reset_button(request):
    if refused := _staff_only(request):
        return refused
    try:
        result = panic_reset(by=_by(request))
    except PanicResetRefused as error:
        messages.error(request, f"Panic reset refused: {error.message}")
        return redirect("dashboard")
    if result.was_locked:
        messages.success(request, "Panic lock lifted: the exchange shows no position and no open order.")
    else:
        messages.info(request, "The panic lock was not on; nothing to reset.")
    return redirect("dashboard")
