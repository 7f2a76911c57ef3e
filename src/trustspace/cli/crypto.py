"""``trustspace crypto``: SM2/SM3 by hand, in formats the OpenSSL 3 CLI reads and writes.

Exit codes follow ``openssl dgst -verify`` where it has one: 0 success, 1 a signature that
does not verify, 2 bad input (unreadable file, malformed key, unknown backend).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO, NoReturn

import click

from trustspace.crypto import (
    DEFAULT_DISTID,
    CryptoError,
    InvalidSignature,
    SM2Backend,
    SM2PrivateKey,
    SM2PublicKey,
    backend_status,
    default_backend,
    get_backend,
    sm3_file,
)
from trustspace.crypto.sm2 import ENV_VAR, PREFERENCE
from trustspace.crypto.sm2.encoding import PEM_PUBLIC_KEY, pem_blocks

__all__ = ["crypto"]

EXIT_INVALID = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _read(path: str) -> bytes:
    """Read a file, or standard input for ``-``; unreadable input is exit 2."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}")


def _open_input(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return Path(path).open("rb")
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}")


def _load_private(path: str) -> SM2PrivateKey:
    try:
        return SM2PrivateKey.from_pem(_read(path))
    except CryptoError as exc:
        _fail(f"{path}: {exc}")


def _load_public(path: str) -> SM2PublicKey:
    """A PUBLIC KEY PEM, or the public half of a private key PEM."""
    data = _read(path)
    try:
        if any(label == PEM_PUBLIC_KEY for label, _ in pem_blocks(data)):
            return SM2PublicKey.from_pem(data)
        return SM2PrivateKey.from_pem(data).public_key()
    except CryptoError as exc:
        _fail(f"{path}: {exc}")


def _backend(name: str | None) -> SM2Backend | None:
    if name is None:
        return None
    try:
        return get_backend(name)
    except CryptoError as exc:
        _fail(str(exc))


_distid_option = click.option(
    "--distid",
    default=DEFAULT_DISTID.decode(),
    show_default=True,
    help="SM2 signer ID (ASCII); both sides must use the same one.",
)
_backend_option = click.option(
    "--backend",
    "backend_name",
    type=click.Choice(PREFERENCE),
    default=None,
    help=f"SM2 backend to use (default: fastest available, or ${ENV_VAR}).",
)


@click.group()
def crypto() -> None:
    """SM2 keys and signatures, SM3 digests (OpenSSL 3 compatible formats)."""


@crypto.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the PKCS#8 PEM private key (created with mode 0600).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def keygen(out: Path, force: bool) -> None:
    """Generate an SM2 private key; print its key id."""
    key = SM2PrivateKey.generate()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(out, flags | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        _fail(f"{out} exists; pass --force to overwrite it")
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc.__class__.__name__}")
    with os.fdopen(fd, "wb") as fh:
        # An existing file keeps its old mode through O_TRUNC; a key must not.
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key.to_pem())
    click.echo(key.key_id)


@crypto.command()
@click.argument("key", metavar="KEY.pem")
def pubkey(key: str) -> None:
    """Print the public key (SubjectPublicKeyInfo PEM) of a private key."""
    click.echo(_load_public(key).to_pem().decode(), nl=False)


@crypto.command()
@click.argument("key", metavar="KEY.pem")
@click.argument("file", metavar="FILE")
@click.option(
    "--out", "out", required=True, help="Where to write the DER signature ('-' for stdout)."
)
@_distid_option
@_backend_option
def sign(key: str, file: str, out: str, distid: str, backend_name: str | None) -> None:
    """Sign FILE ('-' for stdin) with SM2-with-SM3; write a DER signature."""
    private = _load_private(key)
    signature = private.sign(_read(file), distid=distid.encode(), backend=_backend(backend_name))
    if out == "-":
        sys.stdout.buffer.write(signature)
        sys.stdout.buffer.flush()
        return
    try:
        Path(out).write_bytes(signature)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc.__class__.__name__}")


@crypto.command()
@click.argument("pub", metavar="PUB.pem")
@click.argument("file", metavar="FILE")
@click.argument("sig", metavar="SIG")
@_distid_option
@_backend_option
def verify(pub: str, file: str, sig: str, distid: str, backend_name: str | None) -> None:
    """Verify a DER SM2 signature of FILE: exit 0 valid, 1 invalid, 2 bad input."""
    public = _load_public(pub)
    impl = _backend(backend_name)
    data = _read(file)
    signature = _read(sig)
    try:
        public.verify(data, signature, distid=distid.encode(), backend=impl)
    except InvalidSignature as exc:
        click.echo(f"FAIL: {exc}")
        sys.exit(EXIT_INVALID)
    except CryptoError as exc:
        _fail(str(exc))
    click.echo(f"OK: signature verifies (key id {public.key_id})")


@crypto.command()
@click.argument("pub", metavar="PUB.pem")
def fingerprint(pub: str) -> None:
    """Print the key id: SM3 (hex) of the DER SubjectPublicKeyInfo."""
    click.echo(_load_public(pub).key_id)


@crypto.command()
@click.argument("file", metavar="FILE")
def digest(file: str) -> None:
    """Print the SM3 digest (hex) of FILE ('-' for stdin)."""
    stream = _open_input(file)
    try:
        value = sm3_file(stream)
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc.__class__.__name__}")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    click.echo(value.hex())


@crypto.command()
def backends() -> None:
    """List SM2 backends, whether each is available, and which one is selected."""
    rows = backend_status()
    width = max(len(r.name) for r in rows)
    for row in rows:
        mark = "*" if row.selected else " "
        state = "available  " if row.available else "unavailable"
        click.echo(f"{mark} {row.name:<{width}}  {state}  {row.detail}")
    if not any(row.selected for row in rows):
        try:
            default_backend()
        except CryptoError as exc:
            _fail(f"{ENV_VAR}: {exc}")
