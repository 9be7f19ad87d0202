"""Time models of the DLPC900 pattern paths (firmware_iface.dlpc900.timing): report counts of
the on-the-fly upload, the video path's frames, the path chosen by OPUHardware."""

import numpy as np
import pytest

from firmware_iface.dlpc900 import commands as c
from firmware_iface.dlpc900.images import prepare_upload_elements
from firmware_iface.dlpc900.report import Request, encode_request, split_message
from firmware_iface.dlpc900.timing import PathTiming, UsbLink
from firmware_iface.errors import InputError
from firmware_iface.geometry import DmdLayout


def test_image_reports_equal_the_driver_framing():
    link = UsbLink()
    for size in (100, 504, 505, 20_898, 6_224_091):
        framed = sum(
            len(split_message(encode_request(
                Request(c.Command.BMP_LOAD_DATA, c.encode_bmp_load_data(ch), reply=False))))
            for ch in c.split_image(bytes(size))
        )
        assert link.image_reports(size) == framed
    # a random full-resolution ERLE image (6,224,091 bytes, docs/dlpc900.md): 12,350 commands,
    # ~98,800 64-byte reports, ~99 s at one report per millisecond
    assert len(c.split_image(bytes(6_224_091))) == 12_350
    assert link.image_reports(6_224_091) == pytest.approx(98_800, abs=50)
    assert link.image_reports(6_224_091) / link.reports_per_s == pytest.approx(98.8, abs=0.05)


def test_upload_time_follows_the_erle_size_and_the_report_rate():
    layout = DmdLayout.fit(4096, 4096, max_macro_pixel=8)
    el = np.random.default_rng(0).random((24, layout.n_elements)) < 0.5
    plan = prepare_upload_elements(el, layout)
    slow, fast = UsbLink(), UsbLink(reports_per_s=8000)
    t = slow.upload_s([len(b) for b in plan.images], 24)
    # 2 commands (stop, mode) + 24 LUT definitions + LUT configuration, 2 reports each; per
    # image init (2), data (OUT only), error-code read (2)
    expected = (2 * 27 + 4 + slow.image_reports(plan.n_bytes)) / 1000
    assert t == pytest.approx(expected)
    assert fast.upload_s([plan.n_bytes], 24) == pytest.approx(t / 8)
    usb = PathTiming.usb(110.0)
    assert usb.call_s(24, image_bytes=plan.n_bytes) == pytest.approx(t + 24 * 110e-6)
    with pytest.raises(InputError):
        UsbLink(reports_per_s=0)


def test_video_path_rates():
    for hz, rate in ((60, 1440), (120, 2880)):
        v = PathTiming.video(hz)
        assert v.patterns_per_s == pytest.approx(rate)
        assert v.call_s(24 * 10) == pytest.approx(11 / hz)
        assert v.upload_s(1000) == 0.0
    with pytest.raises(InputError, match="120"):
        PathTiming.video(144)
    with pytest.raises(InputError, match="camera"):
        PathTiming.video(120, camera_readout_us=400)
