#!/usr/bin/env python3
"""MQTT 5.0 checks of a broker with a third-party client (Eclipse Paho, paho-mqtt 2.x).

Usage: v5_paho.py [--host H] --port P [--topic-alias-maximum N] [--receive-maximum N]

Prints one line per check (`ok <name>` or `FAIL <name>: why`) and exits 1 if any
check failed, 2 if paho-mqtt is missing or too old. Topics carry a random prefix,
so the checks may run against a broker that other clients use too.
"""

import argparse
import queue
import sys
import threading
import time
import uuid

try:
    import paho.mqtt
    from paho.mqtt.client import CallbackAPIVersion, Client, MQTTv5
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as e:
    print(f"FAIL setup: paho-mqtt 2.x is not installed ({e}); run scripts/test (installs it into .venv) or pip install 'paho-mqtt>=2,<3'")
    sys.exit(2)

# Time to wait for something that should happen.
WAIT = 3.0
# Time to wait to be fairly sure something does not happen.
QUIET = 0.3


class Failed(Exception):
    """A check's expectation was not met."""


def expect(cond, why):
    if not cond:
        raise Failed(why)


class Peer:
    """A connected paho v5 client whose incoming traffic is queued for the checks."""

    def __init__(self, args, client_id, clean_start=True, session_expiry=None):
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTv5
        )
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self._cond = threading.Condition()
        self._acks = {}  # mid -> (reason codes or reason code, properties)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = self._on_ack
        self.client.on_publish = self._on_ack
        self.disconnected = threading.Event()
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        props = None
        if session_expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry
        self.client.connect(
            args.host, args.port, keepalive=30, clean_start=clean_start, properties=props
        )
        self.client.loop_start()
        try:
            flags, reason, props = self.connack.get(timeout=WAIT)
        except queue.Empty:
            self.close()
            raise Failed(f"no CONNACK for {client_id!r}")
        if reason.is_failure:
            self.close()
            raise Failed(f"CONNACK {reason} for {client_id!r}")
        self.session_present = flags.session_present
        self.connack_properties = props

    def _on_connect(self, _client, _userdata, flags, reason, props):
        self.connack.put((flags, reason, props))

    def _on_ack(self, _client, _userdata, mid, reason, props):
        with self._cond:
            self._acks[mid] = (reason, props)
            self._cond.notify_all()

    def _wait_ack(self, mid, what):
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acks, timeout=WAIT):
                raise Failed(f"no {what} for mid {mid}")
            return self._acks.pop(mid)

    def subscribe(self, topic, options, properties=None):
        """Subscribes and returns the SUBACK's reason code (failures raise)."""
        rc, mid = self.client.subscribe(topic, options=options, properties=properties)
        expect(rc == 0, f"subscribe {topic}: {rc}")
        codes, _ = self._wait_ack(mid, "SUBACK")
        expect(len(codes) == 1, f"SUBACK for {topic}: {codes}")
        expect(not codes[0].is_failure, f"SUBACK for {topic}: {codes[0]}")
        return codes[0]

    def publish(self, topic, payload, qos=0, properties=None):
        """Publishes; for QoS 1 returns the PUBACK reason code once it is in."""
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        expect(info.rc == 0, f"publish {topic!r}: {info.rc}")
        if qos == 0:
            return None
        reason, _ = self._wait_ack(info.mid, "PUBACK")
        return reason

    def recv(self, what):
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise Failed(f"no message: {what}") from None

    def copies(self, what):
        """The next message and any further ones arriving within QUIET."""
        got = [self.recv(what)]
        while True:
            try:
                got.append(self.messages.get(timeout=QUIET))
            except queue.Empty:
                return got

    def nothing_more(self, what):
        try:
            msg = self.messages.get(timeout=QUIET)
        except queue.Empty:
            return
        raise Failed(f"unexpected message on {msg.topic} ({msg.payload!r}): {what}")

    def close(self, properties=None):
        self.client.disconnect(properties=properties)
        # Stopping the network thread only once DISCONNECT is out makes it a clean
        # disconnect the broker has seen, not a dropped connection.
        self.disconnected.wait(timeout=WAIT)
        self.client.loop_stop()


def qos(n, **kw):
    return SubscribeOptions(qos=n, **kw)


def props(packet_type, **values):
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def check_properties_pass_through(args, base):
    topic = f"{base}/props"
    sub = Peer(args, f"{base}-props-sub")
    pub = Peer(args, f"{base}-props-pub")
    try:
        sub.subscribe(topic, qos(1))
        user = [("k", "1"), ("dup", "a"), ("z", "2"), ("dup", "b")]
        p = props(
            PacketTypes.PUBLISH,
            UserProperty=user,
            ContentType="application/json",
            PayloadFormatIndicator=1,
            ResponseTopic=f"{base}/reply",
            CorrelationData=b"\x00\x01corr\xff",
            MessageExpiryInterval=60,
        )
        pub.publish(topic, '{"héllo": 1}'.encode(), qos=1, properties=p)
        msg = sub.recv("the published message")
        got = msg.properties
        expect(msg.payload == '{"héllo": 1}'.encode(), f"payload {msg.payload!r}")
        expect(
            getattr(got, "UserProperty", None) == user,
            f"user properties {getattr(got, 'UserProperty', None)} != {user}",
        )
        expect(
            getattr(got, "ContentType", None) == "application/json",
            f"content type {getattr(got, 'ContentType', None)!r}",
        )
        expect(
            getattr(got, "PayloadFormatIndicator", None) == 1,
            f"payload format indicator {getattr(got, 'PayloadFormatIndicator', None)!r}",
        )
        expect(
            getattr(got, "ResponseTopic", None) == f"{base}/reply",
            f"response topic {getattr(got, 'ResponseTopic', None)!r}",
        )
        expect(
            getattr(got, "CorrelationData", None) == b"\x00\x01corr\xff",
            f"correlation data {getattr(got, 'CorrelationData', None)!r}",
        )
        expiry = getattr(got, "MessageExpiryInterval", None)
        expect(expiry in (59, 60), f"message expiry interval {expiry!r} (sent 60)")
    finally:
        sub.close()
        pub.close()


def check_topic_alias_inbound(args, base):
    sub = Peer(args, f"{base}-alias-sub")
    pub = Peer(args, f"{base}-alias-pub")
    try:
        sub.subscribe(f"{base}/alias/#", qos(0))
        maximum = getattr(pub.connack_properties, "TopicAliasMaximum", 0)
        expect(maximum >= 2, f"CONNACK Topic Alias Maximum {maximum}, need 2")
        alias = lambda n: props(PacketTypes.PUBLISH, TopicAlias=n)  # noqa: E731
        pub.publish(f"{base}/alias/a", b"one", properties=alias(1))
        pub.publish("", b"two", properties=alias(1))
        pub.publish(f"{base}/alias/b", b"three", properties=alias(2))
        pub.publish("", b"four", properties=alias(2))
        pub.publish("", b"five", properties=alias(1))
        got = [sub.recv(f"aliased message {i}") for i in range(5)]
        seen = [(m.topic, m.payload.decode()) for m in got]
        want = [
            (f"{base}/alias/a", "one"),
            (f"{base}/alias/a", "two"),
            (f"{base}/alias/b", "three"),
            (f"{base}/alias/b", "four"),
            (f"{base}/alias/a", "five"),
        ]
        expect(seen == want, f"got {seen}, want {want}")
        expect(pub.client.is_connected(), "publisher was disconnected")
    finally:
        sub.close()
        pub.close()


def check_subscription_identifier(args, base):
    sub = Peer(args, f"{base}-subid")
    pub = Peer(args, f"{base}-subid-pub")
    try:
        sub.subscribe(
            f"{base}/subid/+", qos(1), props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7)
        )
        sub.subscribe(
            f"{base}/subid/#", qos(0), props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=300)
        )
        sub.subscribe(f"{base}/subid/x/none", qos(0))
        # The specification lets a broker send one copy carrying every matching
        # identifier or one copy per subscription (Pigeon: one copy, README).
        pub.publish(f"{base}/subid/x", b"m", qos=1)
        copies = sub.copies("message matching two identified subscriptions")
        ids = sorted(
            tuple(sorted(getattr(m.properties, "SubscriptionIdentifier", []))) for m in copies
        )
        expect(
            ids in ([(7, 300)], [(7,), (300,)]),
            f"subscription identifiers per copy {ids}, want [(7, 300)] or [(7,), (300,)]",
        )
        if len(copies) == 1:
            expect(copies[0].qos == 1, f"delivered at QoS {copies[0].qos}, want the highest (1)")
        # Matched by `#` (id 300) and by a subscription without identifier.
        pub.publish(f"{base}/subid/x/none", b"n", qos=1)
        copies = sub.copies("message on the deeper topic")
        ids = sorted(tuple(getattr(m.properties, "SubscriptionIdentifier", [])) for m in copies)
        expect(ids in ([(300,)], [(), (300,)]), f"subscription identifiers per copy {ids}")
    finally:
        sub.close()
        pub.close()


def check_no_local(args, base):
    topic = f"{base}/nolocal"
    me = Peer(args, f"{base}-nolocal-me")
    other = Peer(args, f"{base}-nolocal-other")
    try:
        me.subscribe(topic, qos(1, noLocal=True))
        other.subscribe(topic, qos(1))
        code = me.publish(topic, b"mine", qos=1)
        expect(code == 0, f"PUBACK {code} (the other subscriber matches)")
        msg = other.recv("the other subscriber gets the message")
        expect(msg.payload == b"mine", f"other got {msg.payload!r}")
        me.nothing_more("no-local subscriber got its own message")
        other.publish(topic, b"theirs", qos=1)
        msg = me.recv("no-local subscriber gets others' messages")
        expect(msg.payload == b"theirs", f"got {msg.payload!r}")
    finally:
        me.close()
        other.close()


def check_shared_subscription(args, base):
    members = [Peer(args, f"{base}-share-{i}") for i in range(2)]
    pub = Peer(args, f"{base}-share-pub")
    try:
        for m in members:
            m.subscribe(f"$share/g/{base}/jobs/+", qos(1))
        sent = [f"job-{i}" for i in range(20)]
        for s in sent:
            code = pub.publish(f"{base}/jobs/x", s.encode(), qos=1)
            expect(code == 0, f"PUBACK {code} for {s}")
        per_member = []
        deadline = time.monotonic() + WAIT
        got = []
        for m in members:
            mine = []
            while len(got) < len(sent):
                try:
                    msg = m.messages.get(timeout=QUIET)
                except queue.Empty:
                    break
                mine.append(msg.payload.decode())
                got.append(mine[-1])
            per_member.append(mine)
        # Whatever is still in flight arrives within WAIT.
        while len(got) < len(sent) and time.monotonic() < deadline:
            for m, mine in zip(members, per_member):
                try:
                    msg = m.messages.get(timeout=0.05)
                except queue.Empty:
                    continue
                mine.append(msg.payload.decode())
                got.append(mine[-1])
        for m in members:
            m.nothing_more("more deliveries than messages")
        expect(len(got) == len(set(got)), f"duplicates: {sorted(got)}")
        expect(sorted(got) == sorted(sent), f"lost: {sorted(set(sent) - set(got))}")
        counts = [len(x) for x in per_member]
        expect(all(c > 0 for c in counts), f"not split between members: {counts}")
    finally:
        for m in members:
            m.close()
        pub.close()


def check_session_expiry(args, base):
    client_id = f"{base}-session"
    topic = f"{base}/session"
    s = Peer(args, client_id, clean_start=True, session_expiry=60)
    try:
        expect(not s.session_present, "session present on a clean start")
        s.subscribe(topic, qos(1))
    finally:
        s.close()
    time.sleep(0.1)  # let the broker see the DISCONNECT
    pub = Peer(args, f"{base}-session-pub")
    try:
        code = pub.publish(topic, b"while away", qos=1)
        expect(code == 0, f"PUBACK {code}: the offline session's subscription should match")
    finally:
        pub.close()
    s = Peer(args, client_id, clean_start=False, session_expiry=60)
    try:
        expect(s.session_present, "CONNACK session present is False after reconnecting")
        msg = s.recv("queued message after reconnecting")
        expect(msg.payload == b"while away", f"got {msg.payload!r}")
        expect(msg.qos == 1, f"delivered at QoS {msg.qos}")
    finally:
        # Leave no session behind on a shared broker.
        s.close(props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))


def check_puback_no_matching_subscribers(args, base):
    pub = Peer(args, f"{base}-nomatch")
    try:
        code = pub.publish(f"{base}/nobody/listens", b"x", qos=1)
        expect(code == 0x10, f"PUBACK reason {code} ({int(code.value):#x}), want 0x10")
        expect(pub.client.is_connected(), "disconnected after a PUBACK 0x10")
    finally:
        pub.close()


def check_puback_payload_format_invalid(args, base):
    # Validating the payload is a MAY of the specification (Mosquitto does not);
    # Pigeon does, and answers PUBACK 0x99 (README).
    topic = f"{base}/pfi"
    sub = Peer(args, f"{base}-pfi-sub")
    pub = Peer(args, f"{base}-pfi-pub")
    try:
        sub.subscribe(topic, qos(1))
        utf8 = props(PacketTypes.PUBLISH, PayloadFormatIndicator=1)
        code = pub.publish(topic, b"\xff\xfe not UTF-8", qos=1, properties=utf8)
        expect(code == 0x99, f"PUBACK reason {code} ({int(code.value):#x}), want 0x99")
        sub.nothing_more("a message with an invalid UTF-8 payload was forwarded")
        # The connection stays up and usable.
        code = pub.publish(topic, "fine ✓".encode(), qos=1, properties=utf8)
        expect(code == 0, f"PUBACK reason {code} for a valid payload")
        msg = sub.recv("the valid message after the refused one")
        expect(msg.payload == "fine ✓".encode(), f"got {msg.payload!r}")
    finally:
        sub.close()
        pub.close()


def check_connack_properties(args, _base):
    c = Peer(args, "")
    try:
        p = c.connack_properties
        assigned = getattr(p, "AssignedClientIdentifier", None)
        expect(assigned, "no Assigned Client Identifier for an empty client id")
        alias_max = getattr(p, "TopicAliasMaximum", None)
        expect(alias_max is not None, "no Topic Alias Maximum")
        if args.topic_alias_maximum is not None:
            expect(
                alias_max == args.topic_alias_maximum,
                f"Topic Alias Maximum {alias_max}, want {args.topic_alias_maximum}",
            )
        recv_max = getattr(p, "ReceiveMaximum", None)
        expect(recv_max is not None, "no Receive Maximum")
        if args.receive_maximum is not None:
            expect(
                recv_max == args.receive_maximum,
                f"Receive Maximum {recv_max}, want {args.receive_maximum}",
            )
    finally:
        c.close()
    # The assigned identifier is a usable, distinct identity.
    d = Peer(args, "")
    try:
        other = getattr(d.connack_properties, "AssignedClientIdentifier", None)
        expect(other and other != assigned, f"assigned ids {assigned!r} and {other!r}")
    finally:
        d.close()


CHECKS = [
    ("properties_pass_through", check_properties_pass_through),
    ("topic_alias_inbound", check_topic_alias_inbound),
    ("subscription_identifier", check_subscription_identifier),
    ("no_local", check_no_local),
    ("shared_subscription", check_shared_subscription),
    ("session_expiry", check_session_expiry),
    ("puback_no_matching_subscribers", check_puback_no_matching_subscribers),
    ("puback_payload_format_invalid", check_puback_payload_format_invalid),
    ("connack_properties", check_connack_properties),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--topic-alias-maximum", type=int, help="expected in CONNACK")
    ap.add_argument("--receive-maximum", type=int, help="expected in CONNACK")
    ap.add_argument("--only", help="run only the checks whose name contains this")
    args = ap.parse_args()

    major = int(paho.mqtt.__version__.split(".")[0])
    if major < 2:
        print(f"FAIL setup: paho-mqtt {paho.mqtt.__version__} found, need 2.x")
        return 2
    base = f"paho-{uuid.uuid4().hex[:8]}"
    failed = 0
    for name, check in CHECKS:
        if args.only and args.only not in name:
            continue
        t0 = time.monotonic()
        try:
            check(args, base)
            print(f"ok {name} ({time.monotonic() - t0:.2f}s)", flush=True)
        except Failed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a client error is a failed check, not a crash
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
