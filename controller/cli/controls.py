"""Day-two controls without a pull request: `hold` / `release` one model in one
environment, and `reject` a bad version (the use cases are in `app/controls`; this module
finds the target from the files and says what happened). Each is one tag write in the
registry, so every replica and every `plan` sees it on its next read.

Repeating a command is harmless, as with `kubectl cordon`: holding what is held, releasing
what is not held, rejecting a rejected version (or undoing a rejection that is not there)
changes nothing, says so, and exits 0."""

from __future__ import annotations

import argparse
import getpass
import os
import time
from pathlib import Path
from typing import Any

from mlflow_gitops.app import controls
from mlflow_gitops.cli.common import (
    EXIT_OK,
    add_config,
    add_env,
    add_output,
    add_path,
    add_version,
    fatal,
    known_registries,
    load_desired,
    path_of,
    print_json,
    version_of,
)
from mlflow_gitops.cli.registries import build_registries
from mlflow_gitops.core import tags
from mlflow_gitops.core.model import DEFAULT_REGISTRY
from mlflow_gitops.core.ports import RegistryPort
from mlflow_gitops.policy.controls import Control


def register(sub: Any) -> None:
    p = sub.add_parser("hold", help="emergency stop for one model in one environment",
                       description="Put an emergency hold on MODEL in ENV: until `release`, "
                       "the controller, plan and apply neither apply nor revert anything for "
                       "it there (state Held), so a fix made by hand in the MLflow UI stays. "
                       f"Recorded as the registered-model tag {tags.hold_tag('<ENV>')}; every "
                       "replica sees it on its next pass, no git change needed.",
                       examples=['mlflow-gitops hold fraud-detector --env production '
                                 '--reason "rolled back by hand, INC-42"'])
    _common(p)
    p.add_argument("--reason", required=True, help="why (shown in status, plan, PR comments)")
    p.add_argument("--by", help="who (default: git config user.name, else $USER)")
    p.set_defaults(handler=cmd_hold)

    p = sub.add_parser("release", help="lift an emergency hold",
                       description="Release the hold on MODEL in ENV: the next pass converges "
                       "it to git again (reverting a manual fix unless git was changed too). "
                       "Releasing what is not held says so and exits 0.",
                       examples=["mlflow-gitops release fraud-detector --env production",
                                 "mlflow-gitops release fraud-detector --env prod "
                                 "--registry default   # a file renamed since"])
    _common(p)
    p.add_argument("--registry", help="for a hold of an environment no file defines any "
                   "more (a renamed file): the registry from --config that has it "
                   "(default: default)")
    p.set_defaults(handler=cmd_release)

    p = sub.add_parser("reject", help="mark a version bad: no environment will promote it",
                       description=f"Reject VERSION of MODEL (model-version tag "
                       f"{tags.REJECTED}): no environment promotes it, not even as a rollback, "
                       "and proposals skip it (state Refused with the reason). --undo lifts it.",
                       examples=['mlflow-gitops reject fraud-detector 7 --reason "leaks PII"',
                                 "mlflow-gitops reject fraud-detector 7 --undo"])
    p.add_argument("model", metavar="MODEL", help="registered model name")
    add_version(p, help="the version to reject, e.g. 7")
    p.add_argument("--reason", help="why (required unless --undo)")
    p.add_argument("--by", help="who (default: git config user.name, else $USER)")
    p.add_argument("--undo", action="store_true", help="lift the rejection")
    p.add_argument("--registry", default=DEFAULT_REGISTRY,
                   help="registry name from --config (default: default)")
    add_config(p)
    add_output(p)
    p.set_defaults(handler=cmd_reject)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model name as the environment file lists it")
    add_path(p)
    add_env(p)
    add_config(p)
    add_output(p)


# --- hold / release ----------------------------------------------------------------------

def cmd_hold(args: argparse.Namespace) -> int:
    reason = " ".join(args.reason.split())
    if not reason:
        fatal("--reason is empty: say why, it is what on-call colleagues will read")
    environment, name, registry = _target(args)
    done = controls.hold(registry, name, environment, _who(args.by), reason, time.time())
    assert done.control is not None
    if not done.changed:
        text = (f"{args.model} is already held in {environment} {done.control.describe()}; "
                "nothing changed")
    else:
        text = (f"{args.model} held in {environment} {done.control.describe()}; the "
                f"controller leaves it alone until `mlflow-gitops release {args.model} "
                f"--env {environment}`")
    _say(args, text, environment, name, done.control, held=True)
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    environment, name, registry = _target(args, orphan=True)
    done = controls.release(registry, name, environment)
    if done.control is None:
        text = f"{args.model} is not held in {environment}; nothing changed"
    else:
        text = (f"{args.model} released in {environment} (was held "
                f"{done.control.describe()}); the next pass converges it to git")
    _say(args, text, environment, name, done.control, held=False)
    return EXIT_OK


def _target(args: argparse.Namespace, orphan: bool = False
            ) -> tuple[str, str, RegistryPort]:
    """The environment (from the files), the model's registered name there, its registry.
    With `orphan` (release), an environment no file defines any more (its file was renamed,
    which leaves its hold behind) is taken by name, in `--registry`."""
    path = path_of(args)
    state = load_desired(Path(path), known_registries=known_registries(args.config))
    env = state.by_name().get(args.env)
    known = ", ".join(sorted(state.by_name())) or "none"
    if env is None and orphan:
        where = getattr(args, "registry", None) or DEFAULT_REGISTRY
        port = build_registries(args.config, (where,))[where]
        if controls.held(port, args.model, args.env) is not None:
            return args.env, args.model, port
    if env is None:
        fatal(f"environment '{args.env}' does not exist in {path} (known: {known})")
    entry = env.models.get(args.model)
    if entry is None and not env.sync.prune:
        listed = ", ".join(sorted(env.models)) or "none"
        fatal(f"{env.file}: model '{args.model}' is not listed in environment '{env.name}' "
              f"(listed: {listed})")
    name = entry.registered_name if entry is not None and entry.registered_name else args.model
    registry: RegistryPort = build_registries(args.config, (env.registry,))[env.registry]
    return env.name, name, registry


# --- reject ---------------------------------------------------------------------------------

def cmd_reject(args: argparse.Namespace) -> int:
    args.version = version_of(args)
    registry: RegistryPort = build_registries(args.config, (args.registry,))[args.registry]
    label = f"{args.model} v{args.version}"
    if args.undo:
        done = controls.undo_reject(registry, args.model, args.version)
        if done.control is None:
            return _said(args, f"{label} is not rejected; nothing changed", None, False)
        return _said(args, f"{label} is no longer rejected (was rejected "
                     f"{done.control.describe()})", done.control, False)
    reason = " ".join((args.reason or "").split())
    if not reason:
        controls.version_of(registry, args.model, args.version)  # a missing version first
        fatal("--reason is required: say why the version is bad")
    done = controls.reject(registry, args.model, args.version, _who(args.by), reason,
                           time.time())
    assert done.control is not None
    if not done.changed:
        return _said(args, f"{label} is already rejected {done.control.describe()}; nothing "
                     "changed", done.control, True)
    return _said(args, f"{label} rejected {done.control.describe()}; no environment will "
                 "promote it, not even as a rollback", done.control, True)


def _said(args: argparse.Namespace, text: str, control: Control | None,
          rejected: bool) -> int:
    if args.output == "json":
        print_json({"model": args.model, "version": args.version, "rejected": rejected,
                    **_fields(control)})
    else:
        print(text)
    return EXIT_OK


# --- shared ----------------------------------------------------------------------------------

def _say(args: argparse.Namespace, text: str, environment: str, name: str,
         control: Control | None, held: bool) -> None:
    if args.output == "json":
        print_json({"model": name, "environment": environment, "held": held,
                    **_fields(control)})
    else:
        print(text)


def _fields(control: Control | None) -> dict[str, str]:
    if control is None:
        return {}
    return {"by": control.by, "at": control.at, "reason": control.reason}


def _who(by: str | None) -> str:
    if by and by.strip():
        return by.strip()
    from mlflow_gitops.adapters.git.local import user_name

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "")
    return user_name() or user or "unknown"
