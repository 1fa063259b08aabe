"""Sign-in through OpenID Connect (ProConnect, a collectivité's Keycloak, Microsoft Entra…).

The authorization-code flow with PKCE (S256), through authlib:

1. :func:`begin` reads the provider's discovery document, stores the sign-in
   under way in ``oidc_logins`` (``state`` only as SHA-256; the PKCE verifier,
   the nonce and the page to return to stay server-side, ten minutes at most)
   and answers the provider's authorization URL. The browser holds ``state``
   in a short-lived cookie as well as in the URL.
2. :func:`take_login` consumes that row at the callback (single use: a replayed
   ``state`` finds nothing); :func:`finish` exchanges the code (with the PKCE
   verifier), checks the ID token's signature against the provider's keys
   (JWKS), its ``iss``, ``aud``, ``exp`` and ``nonce``, and reads the userinfo
   (JSON, or a JWT signed by the provider as ProConnect sends it).
3. :func:`sign_in` maps the person to bibia: a returning person by
   ``(issuer, subject)``; a new one by the organisation claim (a SIRET, whose
   first nine digits are the SIREN, or a SIREN) to ``Organisation.siren``,
   created as a member. An unknown organisation creates nothing.

Everything that comes from the provider or the browser is hostile input: each
refusal is a :class:`~domain.errors.SignInError` (the one error tree: its subclasses
answer 400, 403, 404 or 502 at the edge, :mod:`bibia.errors`) with a French message,
and no secret (client secret, code, tokens, ID token) is ever logged, audited
or shown.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bibia.accounts import audit, organisation_by_siren
from bibia.auth import SYSTEM, aware, hash_token
from bibia.db.models import OidcLogin, User, utcnow
from bibia.settings import Settings
from domain.errors import (
    IdentityProviderUnavailable,
    SignInError,
    SignInForbidden,
    SignInUnavailable,
)
from registry.tiers import Role

log = logging.getLogger("bibia.oidc")

LOGIN_LIFETIME = dt.timedelta(minutes=10)
STATE_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32); always fullmatch
ERROR_CODE_RE = re.compile(r"[a-z_]{1,60}")
CALLBACK_PATH = "/connexion/oidc/retour"
LOGGED_OUT_PATH = "/deconnexion/terminee"
METADATA_TTL_S = 3600.0
MAX_RESPONSE_BYTES = 256 * 1024
# Asymmetric signatures only: never « none », never a MAC keyed with the client secret
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LEEWAY_S = 60


# ------------------------------------------------------------------ provider


@dataclass(frozen=True)
class ProviderMetadata:
    """What bibia uses of the provider's discovery document (checked on reading)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    signing_algs: tuple[str, ...]
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)


_cache_lock = threading.Lock()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_keys: dict[str, tuple[float, dict[str, Any]]] = {}


def forget_provider_cache() -> None:
    """Drop the cached discovery documents and keys (tests; a provider's keys rotated)."""
    with _cache_lock:
        _metadata.clear()
        _keys.clear()


def _unavailable(settings: Settings) -> SignInError:
    return IdentityProviderUnavailable(
        f"{settings.oidc_provider_name} ne répond pas pour le moment. Réessayez dans quelques "
        "minutes, ou connectez-vous avec un jeton d'accès.",
        title="Fournisseur d'identité indisponible",
    )


def _get_json(settings: Settings, url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=settings.oidc_timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        log.warning("OpenID Connect provider unreachable (%s)", type(exc).__name__)
        raise _unavailable(settings) from None
    if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
        log.warning("OpenID Connect provider answered %s on %s", response.status_code, url)
        raise _unavailable(settings)
    try:
        data = response.json()
    except ValueError:
        raise _unavailable(settings) from None
    if not isinstance(data, dict):
        raise _unavailable(settings)
    return data


def _endpoint(settings: Settings, data: Mapping[str, Any], key: str, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    issuer = settings.oidc_issuer or ""
    loopback = issuer.startswith("http://")  # the settings admit http:// on loopback only
    if not isinstance(value, str) or not (
        value.startswith("https://") or (loopback and value.startswith("http://"))
    ):
        log.warning("OpenID Connect discovery: %s missing or not https", key)
        raise IdentityProviderUnavailable(
            f"le document de configuration de {settings.oidc_provider_name} est incomplet "
            f"({key}) : prévenez l'administrateur de bibia.",
            title="Fournisseur d'identité mal configuré",
        )
    return value


def provider_metadata(settings: Settings, *, refresh: bool = False) -> ProviderMetadata:
    """The provider's discovery document (``/.well-known/openid-configuration``), cached an hour.

    Raises:
        SignInError: sign-in is off, the provider is unreachable, or its document is unusable
            (its ``issuer`` must be exactly the configured one).
    """
    issuer = settings.oidc_issuer
    if not settings.oidc_enabled or issuer is None:
        raise SignInUnavailable(
            "la connexion par un fournisseur d'identité n'est pas activée sur ce bibia : "
            "connectez-vous avec un jeton d'accès.",
            title="Connexion indisponible",
        )
    with _cache_lock:
        cached = _metadata.get(issuer)
    if cached is not None and not refresh and time.monotonic() - cached[0] < METADATA_TTL_S:
        return cached[1]
    data = _get_json(settings, f"{issuer}/.well-known/openid-configuration")
    if data.get("issuer") != issuer:
        log.warning("OpenID Connect discovery: the document's issuer is not the configured one")
        raise IdentityProviderUnavailable(
            f"le document de configuration de {settings.oidc_provider_name} annonce un autre "
            "émetteur que celui configuré (BIBIA_OIDC_ISSUER) : prévenez l'administrateur de bibia.",
            title="Fournisseur d'identité mal configuré",
        )
    advertised = data.get("id_token_signing_alg_values_supported") or ["RS256"]
    algs = tuple(a for a in SIGNING_ALGS if isinstance(advertised, list) and a in advertised)
    metadata = ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=str(_endpoint(settings, data, "authorization_endpoint", True)),
        token_endpoint=str(_endpoint(settings, data, "token_endpoint", True)),
        jwks_uri=str(_endpoint(settings, data, "jwks_uri", True)),
        userinfo_endpoint=_endpoint(settings, data, "userinfo_endpoint", False),
        end_session_endpoint=_endpoint(settings, data, "end_session_endpoint", False),
        signing_algs=algs or ("RS256",),
        token_auth_methods=_strings(data.get("token_endpoint_auth_methods_supported"))
        or ("client_secret_basic",),  # the specification's default
    )
    with _cache_lock:
        _metadata[issuer] = (time.monotonic(), metadata)
    return metadata


ORIGIN_NETLOC = re.compile(
    r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:]{2,39}\](:[0-9]{1,5})?"
)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not ORIGIN_NETLOC.fullmatch(parts.netloc):
        return None  # never a netloc that could smuggle anything into a header
    return f"{parts.scheme}://{parts.netloc}"


def form_targets(settings: Settings) -> tuple[str, ...]:
    """The origins bibia's forms may lead to besides bibia itself (a page's CSP ``form-action``):
    the provider's, since « Se connecter avec … » and « Se déconnecter » redirect there.

    The issuer's origin, and the authorization and sign-out endpoints' once the discovery
    document was read (no network here: pages never wait for the provider).
    """
    if not settings.oidc_enabled or settings.oidc_issuer is None:
        return ()
    urls = [settings.oidc_issuer]
    with _cache_lock:
        cached = _metadata.get(settings.oidc_issuer)
    if cached is not None:
        urls += [cached[1].authorization_endpoint, cached[1].end_session_endpoint or ""]
    return tuple(sorted({o for o in map(_origin, urls) if o}))


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _key_set(settings: Settings, metadata: ProviderMetadata, *, refresh: bool) -> KeySet:
    with _cache_lock:
        cached = _keys.get(metadata.jwks_uri)
    if cached is None or refresh or time.monotonic() - cached[0] >= METADATA_TTL_S:
        data = _get_json(settings, metadata.jwks_uri)
        with _cache_lock:
            _keys[metadata.jwks_uri] = (time.monotonic(), data)
    else:
        data = cached[1]
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        log.warning("OpenID Connect: the provider's key set is unreadable")
        raise _unavailable(settings) from None


def _verified_jwt(
    settings: Settings, metadata: ProviderMetadata, value: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The claims and header of a JWT signed by one of the provider's keys (signature only)."""
    registry = JWSRegistry(algorithms=list(metadata.signing_algs))
    try:
        try:
            token = jwt.decode(
                value, _key_set(settings, metadata, refresh=False), registry=registry
            )
        except InvalidKeyIdError:  # the provider may have rotated its keys: read them again, once
            token = jwt.decode(value, _key_set(settings, metadata, refresh=True), registry=registry)
    except (JoseError, ValueError, TypeError, KeyError):
        raise _tampered(settings) from None
    return dict(token.claims), dict(token.header)


def _tampered(settings: Settings) -> SignInError:
    return SignInError(
        f"la réponse de {settings.oidc_provider_name} n'a pas pu être vérifiée (signature, "
        "émetteur, destinataire, validité ou nonce incorrects). Par sécurité, la connexion est "
        "refusée ; recommencez depuis la page de connexion.",
    )


class HideCallbackQuery(logging.Filter):
    """uvicorn's access log never shows the query of the callback (the authorization code, the
    state) nor of the page the provider sends back to after its sign-out (its state)."""

    HIDDEN = frozenset({CALLBACK_PATH, LOGGED_OUT_PATH})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            if mark and path in self.HIDDEN:
                record.args = (*args[:2], f"{path}?(masqué)", *args[3:])
        return True


def hide_callback_queries(logger_name: str = "uvicorn.access") -> None:
    """Install :class:`HideCallbackQuery` on the access log (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, HideCallbackQuery) for f in logger.filters):
        logger.addFilter(HideCallbackQuery())


# ------------------------------------------------------------------ the flow


def redirect_uri(settings: Settings, base_url: str) -> str:
    """The callback URL registered with the provider: from ``public_url`` when set, else the request's."""
    return f"{(settings.public_url or base_url).rstrip('/')}{CALLBACK_PATH}"


def logged_out_uri(settings: Settings, base_url: str) -> str:
    """The ``post_logout_redirect_uri`` registered with the provider."""
    return f"{(settings.public_url or base_url).rstrip('/')}{LOGGED_OUT_PATH}"


def _scopes(settings: Settings) -> str:
    scopes = [s for s in settings.oidc_scopes.split() if s]
    return " ".join(["openid", *(s for s in dict.fromkeys(scopes) if s != "openid")])


def _client(settings: Settings, callback: str, metadata: ProviderMetadata) -> OAuth2Client:
    """authlib's client; it authenticates as the provider supports (HTTP Basic, else in the body,
    as ProConnect does; a public client with PKCE alone when no secret is configured)."""
    secret = settings.oidc_secret()
    method = "none"
    if secret:
        supported = metadata.token_auth_methods
        post_only = "client_secret_post" in supported and "client_secret_basic" not in supported
        method = "client_secret_post" if post_only else "client_secret_basic"
    return OAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        scope=_scopes(settings),
        redirect_uri=callback,
        code_challenge_method="S256",
        timeout=settings.oidc_timeout_s,
        follow_redirects=False,
    )


def sweep(session: Session) -> int:
    """Delete the sign-ins under way that expired; how many."""
    result = session.execute(delete(OidcLogin).where(OidcLogin.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def begin(session: Session, settings: Settings, *, next_url: str, callback: str) -> tuple[str, str]:
    """Start a sign-in: the provider's authorization URL and the ``state`` for the browser's cookie.

    Raises:
        SignInError: sign-in is off, or the provider is unreachable.
    """
    metadata = provider_metadata(settings)
    sweep(session)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within PKCE's 43 to 128
    now = utcnow()
    session.add(
        OidcLogin(
            state_hash=hash_token(state),
            provider=settings.oidc_provider_name[:64],
            nonce=nonce,
            code_verifier=verifier,
            next_url=next_url[:1000],
            created_at=now,
            expires_at=now + LOGIN_LIFETIME,
        )
    )
    session.flush()
    with _client(settings, callback, metadata) as client:
        url, _ = client.create_authorization_url(
            metadata.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
        )
    return str(url), state


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in under way, taken out of the database at its callback."""

    nonce: str
    code_verifier: str
    next_url: str
    expired: bool = False


def take_login(
    session: Session, settings: Settings, state: str | None, cookie_state: str | None
) -> PendingLogin:
    """Consume the sign-in ``state`` names (once), checked against the browser's cookie.

    An expired one is consumed too and comes back with ``expired`` set (:func:`finish` refuses
    it): the caller commits the deletion before refusing.

    Raises:
        SignInError: no or a malformed state, a state that is not this browser's, unknown or
            already used (a replay).
    """
    again = "Recommencez depuis la page de connexion."
    if not state or not STATE_RE.fullmatch(state):
        raise SignInError(
            f"le retour du fournisseur d'identité est incomplet (état absent). {again}"
        )
    if not cookie_state or not hmac.compare_digest(cookie_state.encode(), state.encode()):
        raise SignInError(
            "cette connexion n'a pas été commencée dans ce navigateur (ou ses cookies ont été "
            f"effacés) : par sécurité, elle est refusée. {again}"
        )
    row = session.scalar(select(OidcLogin).where(OidcLogin.state_hash == hash_token(state)))
    if row is None:
        raise SignInError(f"cette connexion a déjà été utilisée ou n'existe pas. {again}")
    session.delete(row)  # used once, whatever comes next
    return PendingLogin(
        nonce=row.nonce,
        code_verifier=row.code_verifier,
        next_url=row.next_url,
        expired=aware(row.expires_at) <= utcnow(),
    )


def provider_error(settings: Settings, params: Mapping[str, str]) -> SignInError | None:
    """The refusal a provider sent back in the callback (``error=…``), or None."""
    error = params.get("error")
    if error is None:
        return None
    code = error if ERROR_CODE_RE.fullmatch(error) else "inconnue"
    name = settings.oidc_provider_name
    if code == "access_denied":
        return SignInForbidden(
            f"la connexion a été annulée sur {name} : vous n'êtes pas connecté. Vous pouvez "
            "recommencer quand vous voulez.",
            title="Connexion annulée",
        )
    if code == "login_required" or code == "interaction_required":
        return SignInError(f"{name} demande de vous identifier à nouveau : recommencez.")
    return SignInError(f"{name} a refusé la connexion (erreur « {code} »). Recommencez plus tard.")


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in (claims checked; ``id_token`` kept for the sign-out)."""

    issuer: str
    subject: str
    claims: dict[str, Any]
    id_token: str


def finish(settings: Settings, pending: PendingLogin, code: str | None, callback: str) -> Identity:
    """Exchange the code, verify the ID token, read the userinfo.

    Raises:
        SignInError: no code, the provider refused the exchange, an ID token that does not
            verify (signature, ``iss``, ``aud``, ``exp``, ``nonce``), an unreadable answer.
    """
    if pending.expired:
        raise SignInError(
            f"la connexion a pris plus de {int(LOGIN_LIFETIME.total_seconds() // 60)} minutes et "
            "a expiré. Recommencez depuis la page de connexion."
        )
    if not code or len(code) > 2048 or not code.isprintable():
        raise SignInError(
            "le retour du fournisseur d'identité est incomplet (code absent). "
            "Recommencez depuis la page de connexion."
        )
    metadata = provider_metadata(settings)
    try:
        with _client(settings, callback, metadata) as client:
            token = client.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.code_verifier,
            )
    except OAuthError as exc:
        reason = (
            exc.error if isinstance(exc.error, str) and ERROR_CODE_RE.fullmatch(exc.error) else ""
        )
        log.warning("OpenID Connect: the provider refused the code (%s)", reason or "no reason")
        raise SignInError(
            f"{settings.oidc_provider_name} a refusé de confirmer la connexion"
            f"{f' (erreur « {reason} »)' if reason else ''}. Recommencez depuis la page de connexion."
        ) from None
    except httpx.HTTPError as exc:
        log.warning("OpenID Connect: token endpoint unreachable (%s)", type(exc).__name__)
        raise _unavailable(settings) from None
    except ValueError:
        raise _tampered(settings) from None
    id_token = token.get("id_token")
    access_token = token.get("access_token")
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise _tampered(settings)
    claims, header = _verified_jwt(settings, metadata, id_token)
    check_id_token(
        settings,
        claims,
        header,
        issuer=metadata.issuer,
        nonce=pending.nonce,
        access_token=access_token,
    )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise _tampered(settings)
    merged = dict(claims)
    if metadata.userinfo_endpoint:
        info = _userinfo(settings, metadata, access_token)
        if info.get("sub") != subject:
            raise _tampered(settings)
        merged.update({k: v for k, v in info.items() if k not in {"iss", "aud", "sub"}})
    return Identity(issuer=metadata.issuer, subject=subject, claims=merged, id_token=id_token)


def check_id_token(
    settings: Settings,
    claims: dict[str, Any],
    header: dict[str, Any],
    *,
    issuer: str,
    nonce: str,
    access_token: str | None = None,
) -> None:
    """Check an ID token's claims (its signature already verified): ``iss`` is the provider,
    ``aud`` holds bibia's client id (``azp`` too when there are several), ``exp`` has not
    passed (a minute of leeway), ``nonce`` is the one sent, ``at_hash`` matches the access token.

    Raises:
        SignInError: any of them is missing or wrong.
    """
    client_id = str(settings.oidc_client_id)
    checked = CodeIDToken(
        claims,
        header,
        {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        checked.validate(leeway=LEEWAY_S)
    except (JoseError, ValueError, TypeError, KeyError):
        raise _tampered(settings) from None


def _userinfo(settings: Settings, metadata: ProviderMetadata, access_token: str) -> dict[str, Any]:
    """The userinfo: JSON, or a JWT signed by the provider (``application/jwt``, ProConnect's)."""
    try:
        response = httpx.get(
            str(metadata.userinfo_endpoint),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.oidc_timeout_s,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        log.warning("OpenID Connect: userinfo unreachable (%s)", type(exc).__name__)
        raise _unavailable(settings) from None
    if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
        log.warning("OpenID Connect: userinfo answered %s", response.status_code)
        raise _unavailable(settings)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/jwt":
        claims, _ = _verified_jwt(settings, metadata, response.text.strip())
        if claims.get("iss", metadata.issuer) != metadata.issuer:
            raise _tampered(settings)
        audience = claims.get("aud", settings.oidc_client_id)
        if audience != settings.oidc_client_id and not (
            isinstance(audience, list) and settings.oidc_client_id in audience
        ):
            raise _tampered(settings)
        return claims
    try:
        data = json.loads(response.content)
    except ValueError:
        raise _tampered(settings) from None
    if not isinstance(data, dict):
        raise _tampered(settings)
    return data


def end_session_url(settings: Settings, id_token: str, base_url: str) -> str | None:
    """Where to send the browser to end the provider's session too (RP-initiated logout), or None."""
    try:
        metadata = provider_metadata(settings)
    except SignInError:
        return None
    if not metadata.end_session_endpoint:
        return None
    params = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": logged_out_uri(settings, base_url),
        "state": secrets.token_urlsafe(16),
        "client_id": str(settings.oidc_client_id),
    }
    separator = "&" if "?" in metadata.end_session_endpoint else "?"
    return f"{metadata.end_session_endpoint}{separator}{urlencode(params)}"


# ------------------------------------------------------------------ people


SIRET_RE = re.compile(r"[0-9]{14}")
SIREN_RE = re.compile(r"[0-9]{9}")


@dataclass(frozen=True)
class OrganisationClaim:
    """The organisation a person came with: their SIREN, and the SIRET it was read from if any."""

    siren: str
    siret: str | None


def organisation_claim(claims: Mapping[str, Any], claim: str) -> OrganisationClaim:
    """The person's organisation from the ``claim`` of their claims: a SIRET or a SIREN.

    Spaces are ignored (« 244 400 404 »); 14 digits are a SIRET (the SIREN is
    its first nine), 9 digits a SIREN.

    Raises:
        SignInError: the claim is missing or holds neither.
    """
    value = claims.get(claim)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    digits = re.sub(r"[\s\u00a0\u202f]", "", value) if isinstance(value, str) else ""
    if SIRET_RE.fullmatch(digits):
        return OrganisationClaim(siren=digits[:9], siret=digits)
    if SIREN_RE.fullmatch(digits):
        return OrganisationClaim(siren=digits, siret=None)
    if value is None or value == "":
        raise SignInForbidden(
            f"le fournisseur d'identité n'a pas indiqué votre organisation (information « {claim} » "
            "absente) : bibia ne peut pas vous rattacher à une collectivité. Aucun compte n'a été "
            "créé ; demandez à un administrateur de bibia.",
            title="Organisation inconnue",
        )
    raise SignInForbidden(
        f"l'organisation indiquée par le fournisseur d'identité (information « {claim} ») n'est ni "
        "un SIRET (14 chiffres) ni un SIREN (9 chiffres). Aucun compte n'a été créé ; demandez à "
        "un administrateur de bibia.",
        title="Organisation inconnue",
    )


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    clean = "".join(c for c in unicodedata.normalize("NFC", value) if c.isprintable()).strip()
    return clean[:limit] or None


def full_name(claims: Mapping[str, Any]) -> str | None:
    """The person's name: ``name``, else given name and family name (ProConnect's ``usual_name``)."""
    name = _text(claims.get("name"), 300)
    if name:
        return name
    parts = [
        _text(claims.get("given_name"), 150),
        _text(claims.get("usual_name") or claims.get("family_name"), 150),
    ]
    joined = " ".join(p for p in parts if p)
    return joined or None


def _email(claims: Mapping[str, Any]) -> str | None:
    email = _text(claims.get("email"), 320)
    return email if email and re.fullmatch(r"[^@\s]+@[^@\s]+", email) else None


def _user_name(session: Session, organisation_id: int, claims: Mapping[str, Any]) -> str:
    """A readable name, unique in the organisation: the e-mail's local part, else the full name."""
    email = _email(claims)
    source = email.split("@", 1)[0] if email else (full_name(claims) or "agent")
    ascii_ = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9._-]+", "-", ascii_).strip("-.")[:60] or "agent"
    taken = set(
        session.scalars(
            select(User.name).where(
                User.organisation_id == organisation_id, User.name.like(f"{base}%")
            )
        )
    )
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


@dataclass(frozen=True)
class SignedIn:
    user_id: int
    created: bool


def sign_in(session: Session, settings: Settings, identity: Identity) -> SignedIn:
    """The bibia account of ``identity``: found by (issuer, subject), or created as a member.

    Raises:
        SignInError: a new person whose organisation is missing from their claims or unknown to
            bibia (nothing is created).
    """
    now = utcnow()
    user = session.scalar(
        select(User).where(
            User.oidc_issuer == identity.issuer, User.oidc_subject == identity.subject
        )
    )
    email, name = _email(identity.claims), full_name(identity.claims)
    if user is not None:
        user.email = email or user.email
        user.full_name = name or user.full_name
        user.last_login_at = now
        return SignedIn(user_id=user.id, created=False)
    found = organisation_claim(identity.claims, settings.oidc_organisation_claim)
    organisation = organisation_by_siren(session, found.siren)
    if organisation is None:
        came_with = (
            f"SIRET {found.siret}, SIREN {found.siren}" if found.siret else f"SIREN {found.siren}"
        )
        raise SignInForbidden(
            f"votre organisation ({came_with}) n'est pas inscrite sur bibia. Demandez à un "
            "administrateur de bibia de l'ajouter ; aucun compte n'a été créé.",
            title="Organisation inconnue",
        )
    user = User(
        organisation=organisation,
        name=_user_name(session, organisation.id, identity.claims),
        role=Role.MEMBER.value,
        email=email,
        full_name=name,
        oidc_issuer=identity.issuer,
        oidc_subject=identity.subject,
        created_at=now,
        last_login_at=now,
    )
    session.add(user)
    session.flush()
    audit(
        session,
        SYSTEM,
        "user.create",
        f"{user.name}@{organisation.slug}",
        role=user.role,
        method="oidc",
        provider=settings.oidc_provider_name,
    )
    return SignedIn(user_id=user.id, created=True)
