"""The commands: parsed arguments -> configs -> job -> renderer -> exit code."""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.render import JsonRenderer, TextRenderer
from s3ferry.config import StoreConfig, TransferConfig
from s3ferry.errors import UsageError
from s3ferry.jobs.report import JobReport
from s3ferry.locations import is_s3_url


def _store_config(args: argparse.Namespace, side: str = "source") -> StoreConfig:
    """The configuration of one side (``source``: the bucket read; ``dest``: the one
    written): its ``--source-*``/``--dest-*`` options, else the global ones; TLS and
    server-side encryption options apply to both."""

    def option(name: str) -> str | None:
        value = getattr(args, f"{side}_{name}", None)
        return value if value is not None else getattr(args, name, None)

    verify_ssl = not getattr(args, "no_verify_ssl", False)
    if not verify_ssl and not getattr(args, "warned_no_verify_ssl", False):
        args.warned_no_verify_ssl = True
        print("warning: --no-verify-ssl: TLS certificates are not checked", file=sys.stderr)
        # One warning, not one per request.
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    sse, kms_key = getattr(args, "sse", None), getattr(args, "sse_kms_key_id", None)
    sse_c = getattr(args, "sse_c_key", None)
    if kms_key is not None and sse != "aws:kms":
        raise UsageError("--sse-kms-key-id", "needs --sse aws:kms")
    if sse is not None and sse_c is not None:
        raise UsageError("--sse --sse-c-key", "choose one kind of server-side encryption")
    return StoreConfig(
        endpoint_url=option("endpoint_url"),
        profile=option("profile"),
        region=option("region"),
        no_sign_request=bool(
            getattr(args, f"{side}_no_sign_request", False)
            or getattr(args, "no_sign_request", False)
        ),
        verify_ssl=verify_ssl,
        sse=sse,
        sse_kms_key_id=kms_key,
        sse_c_key=None if sse_c is None else _sse_c_key(sse_c),
    )


def state_dir(args: argparse.Namespace) -> Path:
    """Where the command's job journal lives: ``--state-dir`` or the user's cache."""
    from s3ferry.transfer.journal import default_state_dir

    given = getattr(args, "state_dir", None)
    return Path(given) if given else default_state_dir()


def _sse_c_key(text: str) -> bytes:
    """The SSE-C key: the text's bytes, or a file's with ``fileb://``. Never echoed."""
    if text.startswith("fileb://"):
        path = text.removeprefix("fileb://")
        try:
            key = Path(path).read_bytes()
        except OSError as e:
            raise UsageError(f"--sse-c-key fileb://{path}", f"cannot read: {e.strerror}") from e
    else:
        key = text.encode("utf-8", "surrogateescape")
    if len(key) != 32:
        raise UsageError("--sse-c-key", f"must be 32 bytes (AES-256), got {len(key)}")
    return key


# The option that sets each TransferConfig field, for errors about its value.
_TRANSFER_OPTIONS = {
    "multipart_threshold_bytes": "--multipart-threshold",
    "part_size_bytes": "--part-size",
    "large_file_buffers": "--large-file-buffers",
    "large_file_workers": "--large-file-workers",
    "small_file_workers": "--small-file-workers",
}


def _transfer_config(args: argparse.Namespace) -> TransferConfig:
    """The transfer options, checked.

    Raises:
        UsageError: a value out of range, naming its option.
    """
    transfer = TransferConfig(
        multipart_threshold_bytes=args.multipart_threshold,
        part_size_bytes=args.part_size,
        large_file_buffers=args.large_file_buffers,
        large_file_workers=args.large_file_workers,
        small_file_workers=args.small_file_workers,
    )
    try:
        transfer.memory_bound_bytes()  # resolves, so checks, every value
    except ValueError as e:
        field, _, problem = str(e).partition(" ")
        if field in _TRANSFER_OPTIONS:
            raise UsageError(_TRANSFER_OPTIONS[field], problem) from e
        raise UsageError("options", str(e)) from e
    return transfer


def _renderer(args: argparse.Namespace, stdout_is_data: bool) -> TextRenderer | JsonRenderer:
    if getattr(args, "json", False):
        return JsonRenderer(sys.stderr if stdout_is_data else sys.stdout)
    return TextRenderer(
        sys.stderr, verbose=getattr(args, "verbose", False), quiet=getattr(args, "quiet", False)
    )


def exit_code_for(report: JobReport) -> ExitCode:
    return ExitCode.OK if report.ok else ExitCode.PARTIAL_FAILURE


def run_cp(args: argparse.Namespace) -> int:
    # Each direction imports only its own job: a start costs the modules it loads.
    src, dst = args.source, args.destination
    if args.copy_path is not None and not (is_s3_url(src) and is_s3_url(dst)):
        raise UsageError(f"--copy-path {args.copy_path}", "only for copies between buckets")
    transfer = _transfer_config(args)
    renderer = _renderer(args, stdout_is_data=dst == "-")
    renderer.start()
    store = _store_config(args, "source" if is_s3_url(src) else "dest")
    if is_s3_url(src) and is_s3_url(dst):
        from s3ferry.jobs.copy import copy

        report = copy(
            src,
            dst,
            transfer=transfer,
            source_store=_store_config(args, "source"),
            dest_store=_store_config(args, "dest"),
            path=args.copy_path or "auto",
            sink=renderer,
        )
    elif is_s3_url(src) and dst == "-":
        from s3ferry.jobs.download import download_to_stream

        report = download_to_stream(
            src, sys.stdout.buffer, transfer=transfer, store=store, sink=renderer
        )
    elif src == "-" and is_s3_url(dst):
        from s3ferry.jobs.upload import upload_from_stream

        report = upload_from_stream(
            sys.stdin.buffer,  # type: ignore[arg-type]  # BufferedReader has readinto
            dst,
            transfer=transfer,
            store=store,
            sink=renderer,
        )
    elif is_s3_url(src) and not is_s3_url(dst):
        from s3ferry.jobs.download import download

        report = download(
            src, dst, transfer=transfer, store=store, sink=renderer, state_dir=state_dir(args)
        )
    elif is_s3_url(dst) and not is_s3_url(src):
        from s3ferry.jobs.upload import upload

        report = upload(
            src,
            dst,
            transfer=transfer,
            store=store,
            sink=renderer,
            state_dir=state_dir(args),
            follow_symlinks=args.follow_symlinks,
        )
    else:
        raise UsageError(f"{src} {dst}", "at least one side must be s3://bucket/...")
    renderer.finish(report)
    return exit_code_for(report)


def run_local_s3(args: argparse.Namespace) -> int:
    from s3ferry.localserver import (
        LocalS3,
        default_state_file,
        load_state,
        save_state,
        state_lock,
        stop_server,
    )

    state = default_state_file()
    # Held from reading the state to writing it: a second start waits, then finds this server.
    with state_lock(state):
        info = load_state(state)
        if args.action == "start":
            data = Path(args.data_dir).resolve() if args.data_dir else None
            if info is None:
                info = LocalS3(data_dir=data).start(detach=True)
                save_state(info, state)
            elif data is not None and Path(info.data_dir).resolve() != data:
                raise UsageError(
                    f"--data-dir {args.data_dir}",
                    f"a local S3 is already running (pid {info.pid}, data in {info.data_dir}); "
                    "run: s3ferry local-s3 stop",
                )
            _print_env(info.env())
        elif args.action == "env":
            if info is None:
                raise UsageError("local-s3", "no server running; run: s3ferry local-s3 start")
            _print_env(info.env())
        else:
            if info is not None:
                stop_server(info)
            state.unlink(missing_ok=True)
    return ExitCode.OK


def _print_env(env: dict[str, str]) -> None:
    for name, value in env.items():
        print(f"export {name}={value}")


def run_demo(args: argparse.Namespace) -> int:
    """The quick start: embedded S3, sample tree, upload, download back, byte-for-byte check."""
    from s3ferry.cli.demo import run

    with tempfile.TemporaryDirectory(prefix="s3ferry-demo-") as work:
        return run(Path(work), args.files, lambda: _renderer(args, stdout_is_data=False))
