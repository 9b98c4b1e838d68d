"""OpenCaseForm: archive, grant, person, TOTP code (or a session) -> an opened Case; refusals show their reason.

    >>> form = OpenCaseForm(archive="demo-archive", lang="en")   # doctest: +SKIP
    >>> form                                                      # doctest: +SKIP
    >>> case = form.case                                          # after "Open case"   # doctest: +SKIP
    >>> case = form.open_case()                                   # or from code: the same as the button  # doctest: +SKIP

The form calls :func:`~investigator.access.case.open_case` (``investigator.open_case``), the one
public door: the policy, the identity check and the audit happen there. On success it shows the
grant's window (in the archive's zone, named), scope and fields; on a refusal it shows the error's
own message (for PolicyDenied, the deciding rule and reason), never a traceback.

Constructing the form opens nothing: the method is :meth:`OpenCaseForm.open_case`, not ``open`` —
``ipywidgets.Widget.open`` creates the widget's comm and is called by the constructor, so a form
method of that name ran an (audited, failing) open on construction and the form never rendered
("model not found"). tests/unit/widgets/test_views.py checks that no widget here overrides an
ipywidgets method.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import ipywidgets as widgets

from investigator.access.case import open_case
from investigator.errors import InvestigatorError
from investigator.widgets.i18n import label


def describe_case(case: Any, lang: str | None = None) -> str:
    """HTML: grant id, case, person, window in the archive's zone, scope and fields."""
    zone = ZoneInfo(case.timezone)
    start, end = (t.astimezone(zone).strftime("%Y-%m-%d %H:%M") for t in case.window)
    scope = {k: v for k, v in case.scope.items() if v}
    scope_text = "; ".join(f"{k}: {', '.join(v)}" for k, v in scope.items()) or label("all", lang)
    rows = [(label("grant", lang), case.grant.id), (label("case", lang), case.grant.case),
            (label("person", lang), case.person),
            (label("window", lang), f"{start} – {end} ({case.timezone})"),
            (label("scope", lang), scope_text), (label("fields", lang), ", ".join(case.fields))]
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows)
    return f"<table class='investigator-case'>{body}</table>"


class OpenCaseForm(widgets.VBox):
    """Open a case from a notebook without code; :attr:`case` holds it once opened.

    Embedded mode (no ``keyserver``): the passphrase field is the archive
    passphrase. With ``keyserver`` it is the person's personal-key passphrase:
    the form unlocks their key (from ``key_dir``, default
    ~/.investigator/keys/<archive id>) and the key server only accepts requests
    signed with it; the archive passphrase is never asked for.
    """

    def __init__(self, *, archive: str = "", grant: str = "", person: str = "", session: str = "",
                 passphrase: str = "", keyserver: str = "", key_dir: str = "", lang: str | None = None,
                 opener: Callable[..., Any] | None = None, **kwargs: Any) -> None:
        self.lang = lang
        self.case: Any = None
        self._callbacks: list[Callable[[Any], None]] = []
        self._opener = opener if opener is not None else open_case
        L = lambda key: label(key, lang)  # noqa: E731
        self.archive = widgets.Text(value=str(archive), description=L("archive"))
        self.grant = widgets.Text(value=grant, description=L("grant"))
        self.person = widgets.Text(value=person, description=L("person"))
        self.totp = widgets.Text(description=L("totp"), placeholder="123456")
        self.session = widgets.Password(value=session, description=L("session"))
        self.passphrase = widgets.Password(value=passphrase,
                                           description=L("key_passphrase") if keyserver else L("passphrase"))
        self.keyserver = keyserver
        self.key_dir = key_dir
        self.open_button = widgets.Button(description=L("open_case"), icon="folder-open", button_style="primary")
        self.result = widgets.HTML()
        self.result.add_class("investigator-open-result")
        self.open_button.on_click(lambda _b: self.open_case())
        super().__init__([self.archive, self.grant, self.person, self.totp, self.session, self.passphrase,
                          self.open_button, self.result], **kwargs)
        self.add_class("investigator-open-case")

    def on_open(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(case)`` when a case opens."""
        self._callbacks.append(callback)

    def open_case(self) -> Any:
        """Open the case with the form's values (what the button does); returns it, or None.

        A refusal (any InvestigatorError: PolicyDenied, IdentityCheckFailed, GrantInvalid ...) is
        shown in the form, not raised; the TOTP box is cleared after every attempt.
        """
        options: dict[str, Any] = {"grant": self.grant.value.strip(), "person": self.person.value.strip()}
        if self.totp.value.strip():
            options["totp"] = self.totp.value.strip()
        if self.session.value.strip():
            options["session"] = self.session.value.strip()
        if self.passphrase.value and not self.keyserver:
            options["passphrase"] = self.passphrase.value
        try:
            if self.keyserver:
                # requests to the key server are signed with the person's own key, never the archive's:
                # open_case unlocks it from this passphrase
                options["keyserver"] = self.keyserver
                options["key_passphrase"] = self.passphrase.value
                options["key_dir"] = self.key_dir or None
            case = self._opener(self.archive.value.strip(), **options)
        except InvestigatorError as exc:
            self.case = None
            self.result.value = (f"<div style='color:#b00020'><b>{html.escape(label('refused', self.lang))}</b>: "
                                 f"{html.escape(str(exc))}</div>")
            return None
        finally:
            self.totp.value = ""  # a TOTP code is single-use: never leave it in the form
            if self.keyserver:
                self.passphrase.value = ""  # the personal-key passphrase is not kept either
        self.case = case
        self.result.value = f"<b>{html.escape(label('opened', self.lang))}</b>" + describe_case(case, self.lang)
        for callback in self._callbacks:
            try:
                callback(case)
            except Exception as exc:
                # A button's handler that raises only reaches JupyterLab's log console: the form would say
                # "opened" above an empty space. Say it here too (the case stays open), then raise as before.
                detail = f"{type(exc).__name__}: {exc}"
                self.result.value += (f"<div class='investigator-open-failed' style='color:#b00020'>"
                                      f"<b>{html.escape(label('panels_failed', self.lang))}</b>: "
                                      f"{html.escape(detail[:300])}</div>")
                raise
        return case
