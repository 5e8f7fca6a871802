"""/close and /kill ask first: the real PTB application against the Bot API stand-in, with the
simulator behind /close. Who may confirm, when, and how often; and TELEGRAM_ALLOWED_USER_IDS."""

from __future__ import annotations

import logging
import time

import pytest

from controlpanel.config import ConfigError, telegram_user_ids
from core.models import TradingState
from tests.support.telegram import DESK, OWNER, TOKEN, BotThread, buttons
from tests.support.waiting import wait_until
from trading.models import Decision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STRANGER = 5555  # a member of the DESK group who is not OWNER
LABEL = {"kill": "Halt trading", "close": "Close everything"}


@pytest.fixture
def start_bot(telegram_settings, bot_api, panic_settings):
    """Start the bridge (alerts on) after changing settings it reads when it is built."""
    panic_settings.TELEGRAM_BOT_TOKEN = TOKEN
    bots = []

    def start(**overrides) -> BotThread:
        for name, value in overrides.items():
            setattr(telegram_settings, name, value)
        bot = BotThread(bot_api).start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.stop()
        assert bot.error is None, repr(bot.error)


def _nothing_done(sim) -> None:
    """Neither action ran: no halt, no lock, the simulator's two positions still open."""
    time.sleep(0.2)  # a wrongly started action would have journaled by now
    state = TradingState.current()
    assert not state.halted and not state.panic_locked
    assert not Decision.objects.filter(action__in=("halt", "panic", "flatten")).exists()
    assert len(sim.state()["positions"]) == 2


def _acted(action: str, sim) -> None:
    if action == "kill":
        wait_until(lambda: TradingState.current().halted, what="the halt")
    else:
        wait_until(lambda: sim.state()["positions"] == [], timeout_s=20, what="the account flat")
        wait_until(lambda: Decision.objects.filter(action="panic").exists(), what="the panic journaled")
        assert TradingState.current().panic_locked


def _answer_text(bot_api, count: int) -> str:
    return bot_api.wait_callback_answers(count)[count - 1].get("text", "")


def test_kill_asks_first_and_halts_only_on_its_button_once(running_bot, bot_api, sim, open_book):
    bot_api.message_from(OWNER, "/kill")
    [ask] = bot_api.wait_sent(1)
    assert ask.text == (
        "/kill would halt every strategy: no new entries; open positions stay open (/close closes them).\n"
        'Confirm within 60 s: press "Halt trading" or send /kill confirm.'
    )
    assert [text for text, _ in buttons(ask)] == ["Halt trading", "Cancel"]
    _nothing_done(sim)

    bot_api.button_press(ask, "Halt trading")
    [_, reply] = bot_api.wait_sent(2)
    assert _answer_text(bot_api, 1) == "/kill confirmed."
    assert reply.text.startswith(f"Trading halted by telegram:{OWNER}.")
    assert TradingState.load().halted
    assert bot_api.edits[0]["text"].endswith(f"\n\nConfirmed by telegram:{OWNER}.")

    # A second press (a double tap, or the button pressed again later) does nothing and says so.
    bot_api.button_press(ask, "Halt trading")
    second = bot_api.wait_callback_answers(2)[1]
    assert second["text"] == "Nothing done. This /kill was already confirmed or cancelled."
    assert second["show_alert"] in (True, "true", "True")
    assert Decision.objects.filter(action="halt").count() == 1

    # Anything but "confirm" after the command only explains.
    bot_api.message_from(OWNER, "/kill now")
    assert (
        bot_api.wait_sent(3)[2].text == "Send /kill to see what it would do, then /kill confirm within 60 s."
    )


@pytest.mark.parametrize("action", ["kill", "close"])
def test_a_confirmation_from_another_user_or_chat_does_nothing_and_says_so(
    action, running_bot, bot_api, sim, open_book
):
    bot_api.message_from(DESK, f"/{action}", user_id=OWNER)  # OWNER asks in the group
    [ask] = bot_api.wait_sent(1)

    bot_api.button_press(ask, LABEL[action], user_id=STRANGER)  # another member presses
    assert _answer_text(bot_api, 1) == (
        f"Nothing done. Only the user who sent this /{action}, in the chat where it was sent, can confirm it."
    )
    bot_api.message_from(DESK, f"/{action} confirm", user_id=STRANGER)  # ... or types it
    bot_api.message_from(OWNER, f"/{action} confirm")  # OWNER, but in another chat
    [_, in_desk, in_private] = bot_api.wait_sent(3)
    refusal = (
        f"Nothing done. No /{action} is waiting for your confirmation in this chat. Send /{action} first."
    )
    assert (in_desk.chat_id, in_desk.text) == (DESK, refusal)
    assert (in_private.chat_id, in_private.text) == (OWNER, refusal)
    _nothing_done(sim)

    # The request itself is untouched: its owner can still confirm it where it was asked.
    bot_api.message_from(DESK, f"/{action} confirm", user_id=OWNER)
    _acted(action, sim)
    if action == "kill":
        assert TradingState.load().halted_by == f"telegram:{DESK}:{OWNER}"


@pytest.mark.parametrize("action", ["kill", "close"])
def test_a_confirmation_after_the_time_limit_does_nothing_and_says_so(
    action, start_bot, bot_api, sim, open_book
):
    start_bot(TELEGRAM_CONFIRM_TTL_S=1.0)  # the 60 s limit, shortened
    bot_api.message_from(OWNER, f"/{action}")
    [ask] = bot_api.wait_sent(1)
    assert "Confirm within 1 s" in ask.text
    time.sleep(1.1)

    expired = (
        f"Nothing done. This /{action} expired (a confirmation must come within 1 s). Send /{action} again."
    )
    bot_api.button_press(ask, LABEL[action])
    assert _answer_text(bot_api, 1) == expired
    wait_until(lambda: bot_api.edits, what="the buttons removed")
    assert bot_api.edits[0]["text"].endswith("(expired: nothing done)")
    bot_api.message_from(OWNER, f"/{action} confirm")
    assert bot_api.wait_sent(2)[1].text == expired
    _nothing_done(sim)


def test_cancel_ends_a_request_and_only_the_newest_request_counts(running_bot, bot_api, sim, open_book):
    bot_api.message_from(OWNER, "/close")
    [ask] = bot_api.wait_sent(1)
    bot_api.button_press(ask, "Cancel")
    assert _answer_text(bot_api, 1) == "/close cancelled. Nothing done."
    wait_until(lambda: bot_api.edits, what="the buttons removed")
    assert bot_api.edits[0]["text"].endswith(f"\n\nCancelled by telegram:{OWNER}: nothing done.")
    bot_api.message_from(OWNER, "/close confirm")
    assert bot_api.wait_sent(2)[1].text == "Nothing done. This /close was already confirmed or cancelled."

    bot_api.message_from(OWNER, "/kill")
    bot_api.message_from(OWNER, "/kill")
    [*_, older, newer] = bot_api.wait_sent(4)
    bot_api.button_press(older, "Halt trading")
    assert _answer_text(bot_api, 2) == (
        "Nothing done. A newer /kill is waiting for your confirmation; this one no longer counts."
    )
    _nothing_done(sim)
    bot_api.button_press(newer, "Halt trading")
    _acted("kill", sim)


def test_with_allowed_user_ids_only_those_users_are_obeyed_in_a_group(
    start_bot, bot_api, sim, open_book, caplog
):
    caplog.set_level(logging.INFO, logger="telegram_bridge")
    bot = start_bot(TELEGRAM_ALLOWED_USER_IDS=frozenset({OWNER}))
    for text in ("/kill", "/status", "/kill confirm"):
        bot_api.message_from(DESK, text, user_id=STRANGER)
    bot_api.message_from(DESK, "/kill", user_id=OWNER)  # handled in order: the stranger's came first
    [ask] = bot_api.wait_sent(1)
    assert ask.chat_id == DESK and ask.text.startswith("/kill would halt")

    bot_api.button_press(ask, "Halt trading", user_id=STRANGER)
    assert _answer_text(bot_api, 1) == "You are not allowed to command this bot. Nothing done."
    _nothing_done(sim)
    assert len(bot_api.sent) == 1  # the stranger was never answered in the group
    assert bot.application.bot_data["ignored_users"] == {STRANGER: 3}
    ignored = [r.getMessage() for r in caplog.records if "telegram_user_ignored" in r.getMessage()]
    assert len(ignored) == 1 and f"user_id={STRANGER}" in ignored[0]
    from core.models import AccessRefusal

    journaled = set(AccessRefusal.objects.values_list("channel", "reason", "source"))
    assert journaled == {
        ("telegram", "telegram_user", f"{DESK}:{STRANGER}"),
        ("telegram", "telegram_button", f"{DESK}:{STRANGER}"),
    }

    bot_api.button_press(ask, "Halt trading", user_id=OWNER)
    _acted("kill", sim)


def test_allowed_user_ids_parse_positive_ids_and_refuse_anything_else():
    assert telegram_user_ids("") == frozenset()
    assert telegram_user_ids(" 4242, 17 ,") == frozenset({4242, 17})
    for wrong in ("-1001234567", "@owner", "0"):
        with pytest.raises(ConfigError, match="TELEGRAM_ALLOWED_USER_IDS"):
            telegram_user_ids(wrong)
