"""The experiment command line: ``python exp.py [COMMAND] [ARG...] [with UPDATE...] [options]``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from labrun.config.updates import ParsedUpdates, parse_update_tokens
from labrun.errors import CommandLineError
from labrun.cli.options import OPTION_SPECS, SPEC_BY_LONG, SPEC_BY_SHORT, OptionSpec, Options
from labrun._util.suggest import did_you_mean


@dataclass
class CommandLine:
    """What the user asked for."""

    command: str | None
    args: list[str] = field(default_factory=list)
    updates: ParsedUpdates = field(default_factory=ParsedUpdates)
    update_tokens: list[str] = field(default_factory=list)
    options: Options = field(default_factory=Options)
    extra_options: dict[str, Any] = field(default_factory=dict)  # the script's own flags (cli_option), by long


def usage_line(prog: str) -> str:
    return f"  {prog} [COMMAND] [ARG...] [with UPDATE...] [options]\n  {prog} help [COMMAND]"


def options_section(extra: Sequence[OptionSpec] = ()) -> str:
    lines = []
    for spec in [*OPTION_SPECS, *extra]:
        long = f"{spec.long}={spec.arg}" if spec.arg else spec.long
        short = f"{spec.short} {spec.arg}" if spec.arg else spec.short
        flags = f"{short}, {long}" if spec.short else f"    {long}"
        lines.append(f"  {flags:<37} {spec.help}")
    return "Options:\n" + "\n".join(lines)


def _docopt_doc(prog: str, extra: Sequence[OptionSpec]) -> str:
    # Without "[default: ...]" docopt gives None for options not given; Options holds the defaults.
    section = re.sub(r" \[default: [^\]]*\]", "", options_section(extra))
    return f"Usage:\n  {prog} [COMMAND] [ARG...] [-o URL]... [options]\n\n{section}\n"


def _find_long(name: str, by_long: dict[str, OptionSpec]) -> OptionSpec:
    if name in by_long:
        return by_long[name]
    matches = [spec for long, spec in by_long.items() if long.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CommandLineError(f"option '{name}' is ambiguous: {', '.join(s.long for s in matches)}")
    raise CommandLineError(f"unknown option '{name}'{did_you_mean(name, by_long)}; see --help for the options")


def normalise_options(argv: Sequence[str], extra: Sequence[OptionSpec] = ()) -> list[str]:
    """Spell long options with '-' (``--beat_interval`` -> ``--beat-interval``) and refuse unknown ones."""
    by_long = {**SPEC_BY_LONG, **{spec.long: spec for spec in extra}}
    by_short = {**SPEC_BY_SHORT, **{spec.short: spec for spec in extra if spec.short}}
    out = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            out.extend(tokens[i - 1:])
            break
        if token.startswith("--"):
            name, eq, value = token.partition("=")
            spec = _find_long(name.replace("_", "-"), by_long)
            if spec.arg is None and eq:
                raise CommandLineError(f"option {spec.long} takes no value, got '{token}'")
            out.append(spec.long + eq + value)
            if spec.arg and not eq:
                if i >= len(tokens):
                    raise CommandLineError(f"option {spec.long} needs a value: {spec.long}={spec.arg}")
                out.append(tokens[i])
                i += 1
        elif token.startswith("-") and len(token) > 1 and not token[1].isdigit():
            out.append(token)
            for pos, char in enumerate(token[1:], start=1):
                short = by_short.get("-" + char)
                if short is None:
                    raise CommandLineError(
                        f"unknown option '-{char}' in '{token}'{did_you_mean('-' + char, by_short)}; "
                        f"see --help for the options")
                if short.arg:
                    if pos == len(token) - 1:
                        if i >= len(tokens):
                            raise CommandLineError(f"option {short.short} needs a value: {short.short} {short.arg}")
                        out.append(tokens[i])
                        i += 1
                    break
        else:
            out.append(token)
    return out


def parse_command_line(argv: Sequence[str], prog: str, extra: Sequence[OptionSpec] = ()) -> CommandLine:
    """Parse the arguments after the script name; ``extra`` are the script's own options (``cli_option``)."""
    from docopt import DocoptExit, docopt

    normalised = normalise_options(argv, extra)
    try:
        parsed = docopt(_docopt_doc(prog, extra), normalised, default_help=False)
    except DocoptExit as exc:
        why = exc.args[0].splitlines()[0] if exc.args else exc
        raise CommandLineError(f"cannot parse the command line {' '.join(argv)!r}: {why}") from None
    positional = ([parsed["COMMAND"]] if parsed["COMMAND"] else []) + list(parsed["ARG"])
    if "with" in positional:
        at = positional.index("with")
        before, update_tokens = positional[:at], positional[at + 1:]
        if not update_tokens:
            raise CommandLineError("'with' must be followed by updates, e.g. 'with lr=0.01' or a named config")
    else:
        before, update_tokens = positional, []
    own = {spec.long for spec in extra}
    options = Options.from_mapping({key: value for key, value in parsed.items()
                                    if key.startswith("--") and key not in own})
    return CommandLine(
        command=before[0] if before else None,
        args=before[1:],
        updates=parse_update_tokens(update_tokens),
        update_tokens=update_tokens,
        options=options,
        extra_options={key: parsed[key] for key in own if parsed.get(key)},
    )
