"""What the Twilio providers share: credentials from `configure()`, a 404 believed only once the
account answers, and every failure told in one line."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from pulumi.dynamic import CheckFailure, CheckResult, ConfigureRequest, DiffResult, ResourceProvider
from pulumi.output import Unknown
from twilio.base.exceptions import TwilioException

from callmask.twilio import twilio_api
from callmask.twilio.errors import NOT_FOUND, TOO_MANY_REQUESTS, Answer, answer_of  # noqa: F401 (the providers' names)

if TYPE_CHECKING:
    from twilio.rest import Client

MAX_MESSAGE = 300
T = TypeVar("T")


class TwilioProvider(ResourceProvider):
    """Base of the callmask providers. Holds no state that is pickled: the credentials handed to
    `configure()` stay in the provider host's memory (see `__getstate__`)."""

    def configure(self, req: ConfigureRequest) -> None:
        self._credentials = {key: req.config.get(key) for key in twilio_api.CREDENTIAL_KEYS}

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def client(self) -> Client:
        return twilio_api.connect(getattr(self, "_credentials", {}) or {})


class DetailedDiff(DiffResult):
    """A diff that names what changed (inputs, or an output such as `drift`), so that the engine shows those
    alone (callmask.providers.host sends them as Pulumi's detailed diff)."""

    def __init__(self, changed: list[str], replaces: list[str] | None = None, stables: list[str] | None = None,
                 delete_before_replace: bool = False):
        super().__init__(changes=bool(changed), replaces=replaces or [], stables=stables or [],
                         delete_before_replace=delete_before_replace)
        self.changed = list(dict.fromkeys(changed))


class ProviderError(Exception):
    """A failure in one line: the resource, the operation, what happened and what to do next."""

    def __init__(self, text: str, secrets: Iterable[str] = ()):
        super().__init__(one_line(text, secrets))


class NotFoundDoubted(ProviderError):
    """A 404 that could not be believed; twilio_operation names the resource and operation."""


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    text = " ".join(text.split())
    for secret in sorted((s for s in secrets if isinstance(s, str) and s), key=len, reverse=True):
        text = text.replace(secret, "[secret]")
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def changed_inputs(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if is_unknown(news.get(key)) or olds.get(key) != news.get(key)]


def required_text(news: dict[str, Any], *keys: str) -> CheckResult:
    """Inputs that must be non-empty text (or not known yet, in a preview)."""
    failures = [CheckFailure(key, f"{key} must be non-empty text") for key in keys
                if not is_unknown(news.get(key)) and not (isinstance(news.get(key), str) and news.get(key))]
    return CheckResult(news, failures)


def replacing(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> DiffResult:
    """A resource Twilio cannot change in place: any input change makes a new one (before the old one goes)."""
    replaces = changed_inputs(olds, news, keys)
    return DetailedDiff(replaces, replaces)


def friendly_name_checked(news: dict[str, Any], longest: int = 64) -> CheckResult:
    """The inputs, with a failure unless `friendly_name` is 1 to `longest` characters (or not known yet)."""
    name = news.get("friendly_name")
    ok = is_unknown(name) or isinstance(name, str) and 0 < len(name) <= longest
    return CheckResult(news, [] if ok else [CheckFailure("friendly_name",
                                                         f"friendly_name must be 1 to {longest} characters")])


def is_unknown(value: Any) -> bool:
    """A value the engine does not know yet (during a preview); the provider host passes it as `Unknown`."""
    return isinstance(value, Unknown)


@contextmanager
def twilio_operation(resource: str, operation: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Turns any Twilio failure inside into one ProviderError line naming the resource and operation."""
    try:
        yield
    except NotFoundDoubted as error:
        raise ProviderError(f"{resource}: {operation} failed: {error}") from None
    except ProviderError:
        raise
    except twilio_api.MissingCredentials as error:
        raise ProviderError(f"{resource}: cannot {operation}: {error}") from None
    except TwilioException as error:
        answer = answer_of(error)
        advice = "Run `pulumi up` again." if answer.unclear or answer.status == TOO_MANY_REQUESTS else \
            "Fix what Twilio names, then run `pulumi up` again."
        raise ProviderError(f"{resource}: {operation} failed: {answer.describe()}. {advice}", secrets) from None


def unless_gone(client: Client, operation: Callable[[], T], confirm: Callable[[], Any] | None = None) -> T | None:
    """Run a Twilio call on one resource; None only when Twilio says it does not exist (404), `confirm`
    (a fetch, for writes) agrees, and the account itself answers with these credentials: a 404 for
    other credentials, or a stray one, never drops a live resource from the state."""
    try:
        return operation()
    except TwilioException as error:
        if answer_of(error).status != NOT_FOUND:
            raise
    if confirm is not None:
        try:
            confirm()
        except TwilioException as error:
            if answer_of(error).status != NOT_FOUND:
                raise
        else:
            raise NotFoundDoubted("Twilio answered 404 (not found), yet the resource can still be fetched, so it "
                                  "is kept in the state. Run the command again.")
    try:
        client.api.v2010.accounts(client.account_sid).fetch()
    except TwilioException as error:
        raise NotFoundDoubted(
            f"Twilio answered 404 (not found), but account {client.account_sid} cannot be read with these "
            f"credentials either ({answer_of(error).describe()}), so the resource is kept in the state. Check "
            "twilio:accountSid and the key or token.") from None
    return None


def look_again(find: Callable[[], T | None], attempts: int = 5) -> T | None:
    """After an unclear answer: look for what the request would have made, waiting longer each time."""
    failure: TwilioException | None = None
    for attempt in range(attempts):
        try:
            found = find()
        except TwilioException as error:  # the look-up may fail too: keep trying, report it at the end
            found, failure = None, error
        if found is not None:
            return found
        if attempt < attempts - 1:
            time.sleep(twilio_api.backoff_seconds() * 2 ** attempt)
    if failure is not None:
        raise failure
    return None


def create_once(resource: str, find: Callable[[], T | None], make: Callable[[], T], looked: bool = False) -> T:
    """An idempotent create: what an earlier attempt made (its answer lost) is found and adopted, never
    made twice; after an unclear answer it is looked for again before anything is said. `looked`: the
    caller has just looked and found nothing."""
    found = None if looked else find()
    if found is not None:
        return found
    try:
        return make()
    except TwilioException as error:
        answer = answer_of(error)
        if not answer.unclear:
            raise
        found = look_again(find)
        if found is None:
            raise ProviderError(f"{resource}: create failed: {answer.describe()}; Twilio holds nothing it made "
                                "(looked again). Run `pulumi up` again.") from None
        return found
