"""Eclipse Paho (paho-mqtt 2.x) through one of Pigeon's transports: TLS with a
CA file (and optionally a client certificate), WebSocket, or both.

Subscribes, publishes at QoS 1 and checks the message comes back; exits 0 on
success, 1 with a message otherwise.

    transport_paho.py --port P [--ca FILE [--cert FILE --key FILE]] [--ws-path /mqtt]
"""

import argparse
import ssl
import sys
import threading

import paho.mqtt.client as mqtt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ws-path")
    args = ap.parse_args()

    transport = "websockets" if args.ws_path else "tcp"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-transport",
                         transport=transport, protocol=mqtt.MQTTv311)
    if args.ws_path:
        client.ws_set_options(path=args.ws_path)
    if args.ca:
        client.tls_set(ca_certs=args.ca, certfile=args.cert, keyfile=args.key,
                       cert_reqs=ssl.CERT_REQUIRED)

    connected = threading.Event()
    subscribed = threading.Event()
    received = []
    got = threading.Event()
    failure = []

    def on_connect(c, userdata, flags, reason, props):
        if reason.is_failure:
            failure.append(f"CONNACK {reason}")
        connected.set()

    def on_subscribe(c, userdata, mid, reasons, props):
        subscribed.set()

    def on_message(c, userdata, msg):
        received.append((msg.topic, msg.payload))
        got.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("localhost", args.port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(10) or failure:
            return fail(f"no connection: {failure}")
        client.subscribe("paho/transport", qos=1)
        if not subscribed.wait(10):
            return fail("no SUBACK")
        client.publish("paho/transport", b"through " + transport.encode(), qos=1)
        if not got.wait(10):
            return fail("message did not come back")
        expected = ("paho/transport", b"through " + transport.encode())
        if received[0] != expected:
            return fail(f"got {received[0]!r}, expected {expected!r}")
        print(f"ok: {received[0]!r}")
        return 0
    finally:
        client.disconnect()
        client.loop_stop()


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
