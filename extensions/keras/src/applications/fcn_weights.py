"""Keras' ImageNet files, fetched the way `keras.applications` fetches them.

`get_keras_file(file, what)` returns the path of one of the files that
Keras' application modules download (weights with the top, the ImageNet
class index):
- the file cached in `$KERAS_HOME/models`, when it is there and matches the
  hash Keras publishes for it (if any);
- otherwise `keras.utils.get_file(file_name, origin, cache_subdir="models",
  file_hash=...)` with Keras' own names, URLs and hashes, so one cache
  serves both (a cached file that fails its hash is downloaded again, as
  Keras does).

Where this differs from Keras:
- An offline machine or a dead server fails within `TIMEOUT` seconds (the
  host is resolved and connected to under one deadline, then every socket
  operation of the download has a timeout), never hangs, never retries.
- A download that fails its hash is removed (Keras leaves it in the cache).
- Every failure is one line naming the file, the folder, the URL and the
  `weights=<path>` alternative.
- `offline=True` never touches the network: a missing or broken file is
  that one-line error at once.
"""

import dataclasses
import os
import socket
import threading
import time
import urllib.parse
import urllib.request

from keras.src.backend import config
from keras.src.utils import file_utils

# Where Keras' application files live. Every `KerasFile` URL is `BASE_URL`
# plus the file's path there, so a mirror (or a test) can stand in for it.
KERAS_BASE_URL = "https://storage.googleapis.com/"
BASE_URL = KERAS_BASE_URL

# The md5 hashes `keras.applications` passes to `get_file`, by file name.
# Keras publishes none for MobileNetV2's files.
KNOWN_HASHES = {
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5": (
        "64373286793e3c8b2b4e3219cbf3544b"
    ),
    "vgg19_weights_tf_dim_ordering_tf_kernels.h5": (
        "cbe5617147190e668d6c5d5026f83318"
    ),
    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5": (
        "9a0d58056eeedaa3f26cb7ebd46da564"
    ),
    "xception_weights_tf_dim_ordering_tf_kernels.h5": (
        "0a58e3b7378bc2990ea3b43d5981f1f6"
    ),
    "imagenet_class_index.json": "c2c37ea517e94d9795004a39431a14cb",
}

# Seconds to reach the server, and for each socket operation after that.
TIMEOUT = 8.0


@dataclasses.dataclass(frozen=True)
class KerasFile:
    """A file Keras downloads into `$KERAS_HOME/models`.

    Attributes:
        file_name: Keras' name for it in the cache.
        path: its URL path under `BASE_URL`.
        md5_or_sha256: the hash Keras checks it against, where not in
            `KNOWN_HASHES` (read from Keras by `builder_file`).
    """

    file_name: str
    path: str
    md5_or_sha256: str | None = None

    @property
    def origin(self):
        return BASE_URL + self.path

    @property
    def file_hash(self):
        return self.md5_or_sha256 or KNOWN_HASHES.get(self.file_name)


def keras_file(origin):
    """The `KerasFile` of one of Keras' URLs (a module constant of Keras)."""
    if not origin.startswith(KERAS_BASE_URL):
        raise ValueError(
            f"Keras' application files are under {KERAS_BASE_URL}. "
            f"Received: origin={origin}"
        )
    path = origin[len(KERAS_BASE_URL) :]
    return KerasFile(path.rsplit("/", 1)[-1], path)


class _Requested(Exception):
    """Stops a builder at its download, with what it asked for."""

    def __init__(self, arguments):
        super().__init__()
        self.arguments = arguments


def builder_file(builder, **kwargs):
    """The `KerasFile` that a `keras.applications` builder loads for
    `weights="imagenet"` (with `kwargs`, e.g. `include_top=True`): its own
    file name, URL and hash, read from its call to `get_file`, which is
    stopped there (nothing is downloaded; the model is built once)."""
    import inspect

    signature = inspect.signature(file_utils.get_file)

    def requested(*args, **kw):
        raise _Requested(signature.bind(*args, **kw).arguments)

    original = file_utils.get_file
    file_utils.get_file = requested
    try:
        builder(weights="imagenet", **kwargs)
    except _Requested as request:
        arguments = request.arguments
    else:
        raise ValueError(
            f"{builder.__name__}(weights='imagenet') loaded no file. "
            f"Received: kwargs={kwargs}"
        )
    finally:
        file_utils.get_file = original
    file = keras_file(arguments["origin"])
    return KerasFile(
        arguments.get("fname") or file.file_name,
        file.path,
        arguments.get("file_hash"),
    )


def keras_home():
    # Read at call time: Keras reads KERAS_HOME once, when it is imported.
    return os.environ.get("KERAS_HOME") or config.keras_home()


def models_dir():
    """The folder `keras.utils.get_file` caches application files in."""
    base = os.path.expanduser(keras_home())
    if not os.access(base, os.W_OK):  # Keras' own fallback.
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "models")


class WeightsUnavailableError(OSError):
    """A Keras file is neither cached (intact) nor downloadable."""


def cached_path(file):
    """The cached file's path, or `None` when it is missing or fails its
    hash."""
    path = os.path.join(models_dir(), file.file_name)
    if not os.path.isfile(path):
        return None
    if file.file_hash and not file_utils.validate_file(path, file.file_hash):
        return None
    return path


def get_keras_file(
    file, what, offline=False, alternative="pass weights=<path of the file>"
):
    """Returns the path of `file`: cached, else downloaded.

    Args:
        file: a `KerasFile`.
        what: who needs it, for messages, e.g.
            `"VGG16_fcn(weights='imagenet')"`.
        offline: `True`: never download; a missing file is an error.
        alternative: the other way out, for messages (`None`: none).

    Raises:
        WeightsUnavailableError: one line saying what failed, naming the
            file, the folder and the URL, and what to do instead.
    """
    folder = models_dir()
    path = os.path.join(folder, file.file_name)
    found = cached_path(file)
    if found:
        return found
    broken = os.path.isfile(path)  # There, but fails its hash.
    state = (
        f"the copy in {folder} does not match the hash Keras publishes for "
        f"it ({file.file_hash}): a broken download"
        if broken
        else f"it is not in {folder} ($KERAS_HOME/models)"
    )
    instead = f"download {file.origin} into {folder} under that name" + (
        f", or {alternative}." if alternative else "."
    )
    if offline:
        raise WeightsUnavailableError(
            f"{what} needs {file.file_name}: {state}, and offline nothing is "
            f"downloaded. {'Delete it and ' if broken else ''}"
            f"{'r' if broken else 'R'}un online, or {instead}"
        )
    try:
        _check_reachable(file.origin, TIMEOUT)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(TIMEOUT)
        try:
            return file_utils.get_file(
                file.file_name,
                file.origin,
                cache_subdir="models",
                file_hash=file.file_hash,
                cache_dir=keras_home(),
            )
        finally:
            socket.setdefaulttimeout(previous)
    except ValueError as error:  # get_file: the download fails its hash.
        if os.path.isfile(path):  # Keras leaves it; it must not stay.
            os.remove(path)
        reason = (
            f"the download failed its hash check and was removed "
            f"({_one_line(error)}). Try again"
        )
    except TimeoutError:
        reason = (
            f"the server did not answer within {TIMEOUT:g} s. Check the network"
        )
    except Exception as error:  # get_file raises a bare Exception.
        reason = f"the download failed ({_one_line(error)}). Check the network"
    raise WeightsUnavailableError(
        f"{what} needs {file.file_name}: {state}, and {reason}, or {instead}"
    )


def _one_line(error):
    text = " ".join(str(error).split())
    if type(error) in (Exception, ConnectionError, ValueError):
        return text  # Keras' and ours say what happened.
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_reachable(url, timeout):
    """Connects to `url`'s server (or its proxy), all within `timeout` s.

    `urlopen` would try each address of the host with a full timeout, and
    resolving a name on a machine without DNS can block longer still: one
    deadline over both keeps an offline failure within `timeout`.
    """
    deadline = time.monotonic() + timeout
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        parts = urllib.parse.urlsplit(
            proxy if "://" in proxy else "http://" + proxy
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(parts.hostname, port, timeout)
    error = None
    for family, kind, protocol, _, address in addresses:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with socket.socket(family, kind, protocol) as sock:
            sock.settimeout(left)
            try:
                sock.connect(address)
                return
            except OSError as e:
                error = e
    raise ConnectionError(
        f"cannot connect to {parts.hostname}:{port}: "
        + (_one_line(error) if error else f"no answer within {timeout:g} s")
    )


def _resolve(host, port, timeout):
    """`getaddrinfo` with a deadline (in a thread: it has no timeout)."""
    result = {}

    def resolve():
        try:
            result["addresses"] = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except Exception as error:  # Reported, not lost in the thread.
            result["error"] = error

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(timeout)
    if "addresses" in result:
        return result["addresses"]
    raise ConnectionError(
        f"cannot resolve {host}: "
        + (
            _one_line(result["error"])
            if "error" in result
            else f"no answer within {timeout:g} s"
        )
    )
