"""WebP decoded straight to thumbnail size by libwebp, for the image check.

Pillow decodes a WebP at full size through libwebp's animation decoder and then shrinks it;
libwebp itself can scale while it converts the decoded frame to RGB, which does the same
real decode (every macroblock, so damage is still caught) in about 60% of the CPU time. WebP
is the slowest common format to decode, so this is where the crawler's CPU goes furthest.

The library is the one Pillow ships (or a system libwebp), called through its stable decoder
ABI. When it cannot be found, or a file is animated or carries EXIF (whose orientation the
thumbnail must honour), `decoder()` is None or `thumbnail` returns None and the caller uses
Pillow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import logging
import os
import sys

from PIL import Image

log = logging.getLogger(__name__)

_ABI_VERSION = 0x0209  # WEBP_DECODER_ABI_VERSION of libwebp 0.5 to 1.x
_MODE_RGB, _MODE_RGBA = 0, 1
_VP8_STATUS = {
    1: "out of memory",
    2: "invalid parameter",
    3: "bitstream error",
    4: "unsupported feature",
    5: "suspended",
    6: "user abort",
    7: "not enough data",
}
_VP8X_ANIMATION, _VP8X_EXIF = 0x02, 0x08


class _Features(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("has_alpha", ctypes.c_int),
        ("has_animation", ctypes.c_int),
        ("format", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class _RGBABuffer(ctypes.Structure):
    _fields_ = [
        ("rgba", ctypes.c_void_p),
        ("stride", ctypes.c_int),
        ("size", ctypes.c_size_t),
    ]


class _YUVABuffer(ctypes.Structure):
    _fields_ = [
        *[(name, ctypes.c_void_p) for name in ("y", "u", "v", "a")],
        *[(name, ctypes.c_int) for name in ("y_stride", "u_stride", "v_stride", "a_stride")],
        *[(name, ctypes.c_size_t) for name in ("y_size", "u_size", "v_size", "a_size")],
    ]


class _Buffers(ctypes.Union):
    _fields_ = [("RGBA", _RGBABuffer), ("YUVA", _YUVABuffer)]


class _DecBuffer(ctypes.Structure):
    _fields_ = [
        ("colorspace", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("is_external_memory", ctypes.c_int),
        ("u", _Buffers),
        ("pad", ctypes.c_uint32 * 4),
        ("private_memory", ctypes.c_void_p),
    ]


_OPTION_NAMES = [
    "bypass_filtering",
    "no_fancy_upsampling",
    "use_cropping",
    "crop_left",
    "crop_top",
    "crop_width",
    "crop_height",
    "use_scaling",
    "scaled_width",
    "scaled_height",
    "use_threads",
    "dithering_strength",
    "flip",
    "alpha_dithering_strength",
]


class _Options(ctypes.Structure):
    _fields_ = [
        *[(name, ctypes.c_int) for name in _OPTION_NAMES],
        ("pad", ctypes.c_uint32 * 5),
    ]


class _Config(ctypes.Structure):
    _fields_ = [("input", _Features), ("output", _DecBuffer), ("options", _Options)]


class WebPError(Exception):
    """libwebp refused the data; `truncated` when it ended early."""

    def __init__(self, message: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class WebPThumbnailer:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self._init = lib.WebPInitDecoderConfigInternal
        self._init.argtypes = [ctypes.POINTER(_Config), ctypes.c_int]
        self._init.restype = ctypes.c_int
        self._features = lib.WebPGetFeaturesInternal
        self._features.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.POINTER(_Features),
            ctypes.c_int,
        ]
        self._features.restype = ctypes.c_int
        self._decode = lib.WebPDecode
        self._decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Config)]
        self._decode.restype = ctypes.c_int
        self._free = lib.WebPFreeDecBuffer
        self._free.argtypes = [ctypes.POINTER(_DecBuffer)]
        self._free.restype = None
        if not self._init(ctypes.byref(_Config()), _ABI_VERSION):
            raise OSError("libwebp has an incompatible decoder ABI")

    def size(self, data: bytes) -> tuple[int, int] | None:
        """Width and height from the header, or None when this path does not apply."""
        if _vp8x_flags(data) & (_VP8X_ANIMATION | _VP8X_EXIF):
            return None
        features = _Features()
        status = self._features(data, len(data), ctypes.byref(features), _ABI_VERSION)
        if status != 0:
            raise WebPError(_VP8_STATUS.get(status, f"status {status}"), status == 7)
        if features.has_animation:
            return None
        return features.width, features.height

    def thumbnail(self, data: bytes, size: int) -> Image.Image:
        """Decode all of `data` into an RGB image whose longest side is at most `size`.
        Transparent pixels are laid on white, as the Pillow path does."""
        config = _Config()
        if not self._init(ctypes.byref(config), _ABI_VERSION):
            raise OSError("libwebp has an incompatible decoder ABI")
        status = self._features(data, len(data), ctypes.byref(config.input), _ABI_VERSION)
        if status != 0:
            raise WebPError(_VP8_STATUS.get(status, f"status {status}"), status == 7)
        width, height = config.input.width, config.input.height
        alpha = bool(config.input.has_alpha)
        scale = min(1.0, size / max(width, height))
        options = config.options
        options.use_scaling = 1
        options.scaled_width = max(1, round(width * scale))
        options.scaled_height = max(1, round(height * scale))
        config.output.colorspace = _MODE_RGBA if alpha else _MODE_RGB
        status = self._decode(data, len(data), ctypes.byref(config))
        try:
            if status != 0:
                raise WebPError(_VP8_STATUS.get(status, f"status {status}"), status == 7)
            out = config.output
            pixels = ctypes.string_at(out.u.RGBA.rgba, out.u.RGBA.size)
            mode = "RGBA" if alpha else "RGB"
            image = Image.frombuffer(
                mode, (out.width, out.height), pixels, "raw", mode, out.u.RGBA.stride, 1
            )
        finally:
            self._free(ctypes.byref(config.output))
        if not alpha:
            return image
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background


def _vp8x_flags(data: bytes) -> int:
    """The extended header's feature flags (0 for a simple lossy or lossless file)."""
    return data[20] if len(data) > 20 and data[12:16] == b"VP8X" else 0


@functools.cache
def decoder() -> WebPThumbnailer | None:
    """libwebp as Pillow ships it (or the system's), or None: then Pillow decodes WebP."""
    for path in _candidates():
        try:
            return WebPThumbnailer(ctypes.CDLL(path))
        except (OSError, AttributeError) as exc:
            log.debug("libwebp at %s not usable: %s", path, exc)
    return None


def _candidates() -> list[str]:
    import PIL

    package = os.path.dirname(PIL.__file__)
    patterns = [
        os.path.join(package, os.pardir, "pillow.libs", "libwebp-*.so*"),  # Linux wheels
        os.path.join(package, os.pardir, "libwebp-*.so*"),  # the packaged app on Linux
        os.path.join(package, ".dylibs", "libwebp*.dylib"),  # macOS wheels
    ]
    found = [path for pattern in patterns for path in sorted(glob.glob(pattern))]
    if sys.platform != "win32":  # Windows wheels link libwebp into Pillow itself
        system = ctypes.util.find_library("webp")
        if system:
            found.append(system)
    return found
