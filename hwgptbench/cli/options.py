"""What every command shares: the help format, checked option types, renamed options, optional
extras, and which exceptions are a user's mistake (one line, exit 2) rather than a bug."""
from __future__ import annotations

import argparse
import errno
import importlib.util
from pathlib import Path

# the optional dependency (top-level module) -> the extra that installs it
EXTRAS = {"torch": "torch", "tiktoken": "train", "pynvml": "gpu", "xgboost": "fit", "scipy": "fit",
          "moocore": "moo", "pymoo": "moo", "matplotlib": "moo", "optuna": "moo", "tqdm": "moo",
          "sklearn": "moo", "ray": "ray", "syne_tune": "syne-tune", "huggingface_hub": "syne-tune"}
_FIT_COMMANDS = ("fit-surrogates", "gpu-plan")     # scipy comes with `fit` there, with `moo` elsewhere
TORCH_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says what it is."""

    def _get_help_string(self, action):
        text = action.help or ""
        flag = action.nargs == 0                              # store_true and the like: off unless given
        positional = not action.option_strings and action.nargs not in ("?", "*")
        if ("default" in text.lower() or action.default in (None, argparse.SUPPRESS) or flag
                or positional or action.required):
            return text
        return f"{text} (default: %(default)s)"


class RawHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """HelpFormatter keeping a description's own line breaks (examples of commands)."""


DATA_DIR_HELP = ("tables folder (default: data, except where that is the package's own data folder: "
                 "that one is written only when named, --data-dir data)")


def command_line(args) -> str:
    """The command that was run, as provenance records it (`args.argv`: what `main` parsed)."""
    import shlex
    return "hwgptbench " + " ".join(shlex.quote(a) for a in args.argv)


def named_destination(value, default, option: str, is_package) -> str:
    """The folder a writing command writes into: `value` where the user named one; else `default`,
    unless that is the installed package's own folder, which changes only when named."""
    if value is not None:
        return value
    if is_package(default):
        raise ValueError(f"{option}: not given, and its default {str(default)!r} is the package's own folder "
                         f"({Path(default).resolve()}), which changes only when named: pass {option} "
                         f"{default} to write there, or name another folder")
    return default


def parse_with(parse):
    """An argparse type from a function raising ValueError: argparse names the option in the error."""
    def check(text):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    check.__name__ = parse.__name__
    return check


def count(low: int = 0, high: int | None = None, why: str = ""):
    """An integer >= low (a count of things, a size, a number of workers), and <= high where a
    larger one cannot work (`why` says why, in the error)."""
    allowed = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")

    def integer(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}{why}, got {value}")
        return value
    integer.__name__ = allowed
    return integer


def positive(text) -> float:
    """A finite number > 0 (seconds, rates)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def folder(text) -> Path:
    """An existing folder to read from."""
    return _existing(text, folder=True)


def existing_file(text) -> Path:
    """An existing file to read from."""
    return _existing(text, folder=False)


def _existing(text, folder: bool) -> Path:
    path = Path(text)
    if not (path.is_dir() if folder else path.is_file()):
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a folder' if folder else 'a file'} ({_what_is(path)})")
    return path


def _what_is(path: Path) -> str:
    """What stands at `path`, in words (for errors about paths)."""
    if path.is_symlink() and not path.exists():
        return "it is a symlink that leads nowhere (a loop, or its target is missing)"
    if path.is_dir():
        return "it is a folder"
    if path.exists():
        return "it is a file" if path.is_file() else "it is neither a file nor a folder"
    return "it does not exist"


def table_path(text) -> Path:
    """A table file to write or extend: a regular file or nothing yet, in a folder (or one that can
    be made); never a folder, a symlink that leads nowhere, or a path through a file."""
    path = Path(text)
    if not text or not path.name:
        raise argparse.ArgumentTypeError(f"{text!r} names no file; expected a table path such as data/s/mydevice.h5")
    if path.exists() and not path.is_file() or path.is_symlink() and not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} is not a table file ({_what_is(path)})")
    for parent in path.parents:
        if parent.is_symlink() and not parent.exists() or parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r}: its folder {str(parent)!r} is not a folder "
                                              f"({_what_is(parent)})")
        if parent.is_dir():
            break
    return path


def device_name(text) -> str:
    """A device name of a table (h100, cpu_xeon_f6m207_2c), never a torch device."""
    if not text or not text.replace("_", "").isalnum():
        raise argparse.ArgumentTypeError(f"{text!r} is not a device name: letters, digits and '_' "
                                          "(e.g. h100, cpu_xeon_f6m207_2c); omit the option for the hardware's own")
    if text.split(":")[0].lower() in TORCH_DEVICES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a torch device; --device names a table's device (e.g. h100, cpu_xeon_f6m207_2c; "
            f"default: from the hardware). The torch device is --backend (profile) or --torch-device "
            f"(train, evaluate)")
    return text


def names(text) -> list[str]:
    """A comma-separated list of names, none empty."""
    out = [t.strip() for t in text.split(",")]
    if not all(out):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return out


class Renamed(argparse.Action):
    """An old spelling whose meaning changed: a clear error pointing to the new one, not a surprise."""

    def __init__(self, option_strings, dest, new: str, why: str, **kwargs):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kwargs)
        self.new, self.why = new, why

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} {values!r}: {self.why}; use {self.new}")


def renamed(parser, old: str, new: str, why: str) -> None:
    parser.add_argument(old, action=Renamed, new=new, why=why)


def require(*modules: str) -> None:
    """Check up front (without importing) that optional modules are installed, so a long run does
    not fail at its end; the error names the extra to install."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def missing(module: str, command: str) -> str | None:
    """What to install for a missing optional module (None: not one of ours, so a bug)."""
    top = module.split(".")[0]
    if top == "pyarrow":
        return "needs pyarrow: pip install pyarrow"
    extra = EXTRAS.get(top)
    if extra == "fit" and top == "scipy" and command not in _FIT_COMMANDS:
        extra = "moo"
    return f"needs the '{extra}' extra ({top} is missing): pip install 'hwgptbench[{extra}]'" if extra else None


def user_error(e: BaseException, command: str) -> str | None:
    """The one-line message for a user's mistake, or None for a bug (shown with its traceback)."""
    from ..files import LockedError

    if isinstance(e, ModuleNotFoundError) and e.name:
        return missing(e.name, command)
    if isinstance(e, ImportError):
        return str(e) if "pip install" in str(e) else None     # our own messages name the extra
    if isinstance(e, OSError) and e.errno in _ERRNO_TEXT and e.filename is not None:
        return _os_error(e)
    if isinstance(e, UnicodeDecodeError):
        return (f"an input is not UTF-8 text (byte {e.object[e.start:e.start + 1]!r} at position {e.start}); "
                "expected a text file: check the path given")
    if isinstance(e, (ValueError, TypeError, OSError, LockedError)):
        return str(e) or type(e).__name__
    return None


# errno -> what was found instead of what the command expected (the message names the path)
_ERRNO_TEXT = {errno.ENOENT: "does not exist", errno.EACCES: "is not readable or writable by this user",
               errno.EPERM: "is not permitted to this user", errno.EISDIR: "is a folder where a file was expected",
               errno.ENOTDIR: "has a file where a folder was expected", errno.ELOOP: "is a symlink loop",
               errno.EEXIST: "exists already where a new file or folder was expected",
               errno.ENOSPC: "could not be written: the disk is full", errno.EROFS: "is on a read-only file system",
               errno.ENAMETOOLONG: "is too long a name", errno.ENOTEMPTY: "is a folder that is not empty"}


def _os_error(e: OSError) -> str:
    paths = " -> ".join(repr(str(p)) for p in (e.filename, e.filename2) if p is not None)
    return f"{paths}: {_ERRNO_TEXT[e.errno]} (errno {errno.errorcode[e.errno]})"
