#!/usr/bin/env python3
"""Publishes N retained QoS 1 messages of 64 bytes to r/0000000 ... (used by retained_memory.sh)."""
import sys, time, paho.mqtt.client as mqtt
port=int(sys.argv[1]); n=int(sys.argv[2])
c=mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ret", protocol=mqtt.MQTTv311)
c.connect("127.0.0.1", port)
c.loop_start()
payload=b"x"*64
for i in range(n):
    info=c.publish(f"r/{i:07d}", payload, qos=1, retain=True)
    if i % 1000 == 999: info.wait_for_publish()
info.wait_for_publish()
c.disconnect(); c.loop_stop()
