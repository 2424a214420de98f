import threading

import pytest

from edgewise.errors import EdgewiseError
from edgewise.route.breaker import CLOSED, HALF_OPEN, OPEN, BreakerConfig, CircuitBreaker


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_defaults_follow_pybreaker():
    c = BreakerConfig()
    assert (c.fail_max, c.reset_timeout_s) == (5, 60.0)


def test_state_machine():
    clk = FakeClock()
    b = CircuitBreaker(BreakerConfig(fail_max=3, reset_timeout_s=10), clock=clk)
    assert b.state == CLOSED and b.allow()
    b.record_failure(); b.record_failure()
    b.record_success()  # a success resets the consecutive count
    b.record_failure(); b.record_failure()
    assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN and not b.allow() and not b.available()
    assert b.retry_in() == pytest.approx(10.0)
    clk.t += 9.99
    assert b.state == OPEN and not b.allow()
    clk.t += 0.01
    assert b.state == HALF_OPEN and b.available()
    assert b.allow()  # the single probe
    assert not b.allow() and not b.available()  # everyone else stays local meanwhile
    b.record_failure()  # the probe failed: open again, for a full timeout
    assert b.state == OPEN and b.opened_count == 2
    clk.t += 10
    assert b.allow()
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.allow()


def test_lost_probe_does_not_wedge_half_open():
    clk = FakeClock()
    b = CircuitBreaker(BreakerConfig(fail_max=1, reset_timeout_s=5), clock=clk)
    b.record_failure()
    clk.t += 5
    assert b.allow()  # probe handed out, never reported
    clk.t += 4
    assert not b.allow()
    clk.t += 1
    assert b.allow()


def test_concurrent_failures_are_all_counted():
    b = CircuitBreaker(BreakerConfig(fail_max=10**9, reset_timeout_s=1))
    ts = [threading.Thread(target=lambda: [b.record_failure() for _ in range(2000)]) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert b.snapshot()["consecutive_failures"] == 16000


def test_concurrent_half_open_hands_out_one_probe():
    clk = FakeClock()
    b = CircuitBreaker(BreakerConfig(fail_max=1, reset_timeout_s=1), clock=clk)
    b.record_failure()
    clk.t += 1
    got = []
    ts = [threading.Thread(target=lambda: got.append(b.allow())) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(got) == [False] * 15 + [True]


@pytest.mark.parametrize("kw", [{"fail_max": 0}, {"fail_max": 2.5}, {"reset_timeout_s": 0}, {"reset_timeout_s": "60"}])
def test_bad_config(kw):
    with pytest.raises(EdgewiseError):
        BreakerConfig(**kw)
