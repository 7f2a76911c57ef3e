"""Breaker thresholds with a fake clock (B8): the parts e2e tests cannot wait for."""

from __future__ import annotations

from trustspace.crypto import SM2PrivateKey
from trustspace_agent.gateway.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerSettings
from trustspace_agent.gateway.envelope import shared_secret

SPIKE = BreakerSettings(spike_ratio=5.0, spike_window=300, baseline_window=3600, cool_down=60)


def test_volume_spike_trips_only_far_above_the_moving_average() -> None:
    b = Breaker("link", "a-to-b", SPIKE)
    t = 0.0
    for _ in range(60):  # an hour of steady 100 KiB a minute
        assert b.record_transfer(t, 100 * 1024) is None
        t += 60
    for _ in range(4):  # 4x the usual: busy, not anomalous
        assert b.record_transfer(t, 400 * 1024 // 4) is None
    trip = None
    for _ in range(30):  # then a bulk export
        trip = trip or b.record_transfer(t + 1, 1024 * 1024)
    assert trip is not None and trip.reason == "VolumeSpike"
    assert b.state == OPEN and b.resume_at == t + 1 + 60


def test_no_history_no_spike() -> None:
    b = Breaker("link", "a-to-b", SPIKE)
    assert all(b.record_transfer(0, 50 << 20) is None for _ in range(10))


def test_half_open_lets_one_probe_and_a_failed_probe_reopens() -> None:
    b = Breaker("link", "x", BreakerSettings(denied_count=2, cool_down=10))
    b.record_denied(0)
    assert b.record_denied(1) is not None
    assert b.admit(5) is not None
    assert b.admit(11) is None and b.state == HALF_OPEN
    assert b.admit(11) is not None  # one probe at a time
    trip = b.finish_probe(False, 12)
    assert trip is not None and b.state == OPEN and b.trips == 2
    assert b.admit(23) is None
    b.finish_probe(True, 23)
    assert b.state == CLOSED


def test_manual_breaker_waits_for_reset() -> None:
    b = Breaker("link", "x", BreakerSettings(invalid_count=1, manual=True))
    assert b.record_invalid_signature(0) is not None
    assert b.resume_at is None and b.admit(10**9) is not None
    b.reset()
    assert b.admit(10**9) is None


def test_strictest_settings_win() -> None:
    s = BreakerSettings.strictest(
        [
            {"deniedBurst": {"count": 5, "window": "1m"}, "resume": "Manual", "coolDown": "1h"},
            {"deniedBurst": {"count": 20, "window": "5m"}, "coolDown": "15m"},
        ]
    )
    assert (s.denied_count, s.denied_window, s.manual, s.cool_down) == (5, 300, True, 3600)


def test_static_key_agreement_is_symmetric() -> None:
    a, b = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    assert shared_secret(a, b.public_key()) == shared_secret(b, a.public_key())
    assert shared_secret(a, b.public_key()) != shared_secret(
        a, SM2PrivateKey.generate().public_key()
    )
