"""Load a run profile from YAML and check all of it, so a bad profile fails before any work starts."""
from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.checks import check_profile
from config.errors import Problem, ProfileError, shown
from config.paths import PROFILES_DIR, REPO
from config.schema import Profile

__all__ = ["ProfileError", "load_profile", "profile_path", "shipped_profiles"]

DOCUMENT = "(document)"


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads YAML 1.2 floats such as 1e-8 as numbers, not strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def shipped_profiles() -> list[str]:
    """Names of the profiles under config/profiles/."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def profile_path(name_or_path: str | Path) -> Path:
    """A bare name means config/profiles/<name>.yaml; anything with a suffix or a slash is a path."""
    raw = str(name_or_path)
    if "/" in raw or raw.endswith((".yaml", ".yml")):
        return Path(raw).resolve()
    return PROFILES_DIR / f"{raw}.yaml"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def load_profile(name_or_path: str | Path) -> Profile:
    """Read, parse and check one profile; any problem raises ProfileError naming file and key."""
    path = profile_path(name_or_path)
    file = _display(path)
    if not path.is_file():
        close = difflib.get_close_matches(str(name_or_path), shipped_profiles(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (shipped: {', '.join(shipped_profiles())})"
        raise ProfileError(file, [Problem("(file)", "an existing profile file", "no such file" + hint)])
    raw, lines = _parse_yaml(path, file)
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        problems = [_translate(err) for err in _root_causes(exc.errors())]
        raise ProfileError(file, problems, _lines_for(problems, lines)) from None
    problems = check_profile(profile, path)
    if problems:
        raise ProfileError(file, problems, _lines_for(problems, lines))
    return profile


def _parse_yaml(path: Path, file: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The document as a mapping plus the line of every dotted key; duplicate keys refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(file, [Problem("(file)", "a readable UTF-8 file", str(exc))]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        raw = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        what = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(file, [Problem(DOCUMENT, "valid YAML", f"a syntax error: {what}")],
                           {DOCUMENT: line}) from None
    finally:
        loader.dispose()
    if not isinstance(raw, dict):
        raise ProfileError(file, [Problem(DOCUMENT, "a mapping of profile keys", shown(raw))])
    lines: dict[str, int] = {}
    duplicates: list[Problem] = []
    _walk(node, "", lines, duplicates)
    if duplicates:
        raise ProfileError(file, duplicates, lines)
    return raw, lines


def _walk(node: yaml.Node, prefix: str, lines: dict[str, int], duplicates: list[Problem]) -> None:
    """Record the line of each key under `node`; note any key given twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            if key in lines:
                duplicates.append(Problem(key, "each key once", f"it again (first on line {lines[key]})"))
            lines.setdefault(key, key_node.start_mark.line + 1)
            _walk(value_node, key, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}[{i}]"
            lines[key] = item.start_mark.line + 1
            _walk(item, key, lines, duplicates)


def _lines_for(problems: list[Problem], lines: dict[str, int]) -> dict[str, int]:
    """Each problem's line: its own key's, else the nearest enclosing key's that the file has."""
    found = {}
    for problem in problems:
        key = problem.key
        while key and key not in lines:
            key = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", key) if re.search(r"[.\[]", key) else ""
        if key:
            found[problem.key] = lines[key]
    return found


# --- pydantic errors to Problems -------------------------------------------------------------

TYPE_WORDS = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a string", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "tuple_type": "a list",
    "list_type": "a list", "none_required": "null",
}
BOUND_WORDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _dotted(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if part == "[key]":
            continue
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _unwrap(annotation: Any) -> Any:
    """The model or container type behind Optional[...] and Annotated[...]."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _field_at(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model holding the last key of `loc`, and that key's FieldInfo (None if not a field)."""
    current: Any = Profile
    for i, part in enumerate(loc):
        current = _unwrap(current)
        last = i == len(loc) - 1
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part) if isinstance(part, str) else None
            if last:
                return current, info
            if info is None:
                return None, None
            current = info.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        elif typing.get_origin(current) is tuple:
            current = typing.get_args(current)[0]
        else:
            return None, None
    return None, None


def _bounds(err: dict[str, Any], info: Any) -> str:
    """'a number > 0 and <= 1e+10': the field's declared bounds, else the ones the error cites."""
    limits = {}
    for meta in getattr(info, "metadata", ()) or ():
        for name, _ in BOUND_WORDS:
            if getattr(meta, name, None) is not None:
                limits[name] = getattr(meta, name)
    limits = limits or {k: v for k, v in (err.get("ctx") or {}).items() if k in dict(BOUND_WORDS)}
    noun = "an integer" if isinstance(err.get("input"), int) and not isinstance(err["input"], bool) \
        and getattr(info, "annotation", None) is int else "a number"
    parts = [f"{sign} {limits[name]:g}" for name, sign in BOUND_WORDS if name in limits]
    return f"{noun} {' and '.join(parts)}"


def _root_causes(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop a list's length error that only echoes its items' own errors (pydantic counts after
    validation, so one bad item in a one-item list also reports 'too short')."""
    item_locs = [tuple(e["loc"]) for e in errors]
    return [e for e in errors if not (e["type"] in ("too_short", "too_long") and any(
        len(loc) > len(e["loc"]) and loc[: len(e["loc"])] == tuple(e["loc"]) for loc in item_locs))]


def _translate(err: dict[str, Any]) -> Problem:
    """One pydantic error as a Problem: dotted key, what the schema expects, what the file has."""
    loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
    key, got = _dotted(loc), shown(err.get("input"))
    model, info = _field_at(loc)
    if kind == "missing":
        return Problem(key, "a value (required key)", "nothing")
    if kind == "extra_forbidden":
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"one of: {', '.join(known)}"
        return Problem(key, f"a known key ({hint})", f"unknown key {str(loc[-1])!r}")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return Problem(key, _bounds(err, info), got)
    if kind == "literal_error":
        return Problem(key, f"one of {ctx.get('expected')}", got)
    if kind == "too_short":
        return Problem(key, f"at least {ctx.get('min_length')} item(s)", got)
    if kind == "too_long":
        return Problem(key, f"at most {ctx.get('max_length')} item(s)", got)
    if kind == "string_too_short":
        return Problem(key, "a non-empty string", got)
    if kind == "string_pattern_mismatch":
        what = (info.description if info is not None and info.description else ctx.get("pattern"))
        return Problem(key, f"text like {what}", got)
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return Problem(key, message.removeprefix("expected "), got)
    return Problem(key, TYPE_WORDS.get(kind, err["msg"].lower()), got)


def main(argv: list[str] | None = None) -> int:
    """`python -m config.loader NAME_OR_PATH...`: check profiles before a run; exit 2 on any problem."""
    import sys

    names = (sys.argv[1:] if argv is None else argv) or shipped_profiles()
    status = 0
    for name in names:
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            print(exc, file=sys.stderr)
            status = 2
        else:
            print(f"ok {profile.name} mode={profile.mode} digest={profile.digest()}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
