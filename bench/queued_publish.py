#!/usr/bin/env python3
"""For queued_memory.sh: S persistent sessions subscribe at QoS 1 to q/<i> and go
offline; then one publisher sends M QoS 1 messages of 64 bytes to each topic, one
at a time (each waits for its PUBACK, so each arrives in a read of its own, as
from a device that publishes now and then). Every message is queued for an
offline session."""
import sys, paho.mqtt.client as mqtt
port, sessions, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
V2 = mqtt.CallbackAPIVersion.VERSION2
for i in range(sessions):
    s = mqtt.Client(V2, client_id=f"offline-{i}", clean_session=False, protocol=mqtt.MQTTv311)
    s.connect("127.0.0.1", port)
    s.loop_start()
    s.subscribe(f"q/{i}", qos=1)[1]
    info = s.publish("ignored/ping", b"", qos=1)  # a round trip: the SUBACK came first
    info.wait_for_publish()
    s.disconnect(); s.loop_stop()
c = mqtt.Client(V2, client_id="device", protocol=mqtt.MQTTv311)
c.connect("127.0.0.1", port)
c.loop_start()
payload = b"x" * 64
for n in range(per):
    for i in range(sessions):
        c.publish(f"q/{i}", payload, qos=1).wait_for_publish()
c.disconnect(); c.loop_stop()
