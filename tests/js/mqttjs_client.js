#!/usr/bin/env node
// MQTT.js from Node, for tests/tests/mqttjs.rs: connects to URL (ws:// or
// wss://), subscribes to TOPIC, publishes one message to it and waits for it
// to come back, publishes one to each --forward topic, then prints one JSON
// line with what happened and exits 0. Any failure prints the error and exits 1.
//
//   node mqttjs_client.js URL --topic T [--ca FILE] [--id ID] [--version 4|5]
//                         [--forward TOPIC]... [--payload TEXT]
"use strict";

const fs = require("fs");
const mqtt = require("mqtt");

function parse(argv) {
  const opts = { url: null, topic: null, ca: null, id: null, version: 4, forward: [], payload: "hello from mqtt.js" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--topic": opts.topic = value(); break;
      case "--ca": opts.ca = value(); break;
      case "--id": opts.id = value(); break;
      case "--version": opts.version = Number(value()); break;
      case "--forward": opts.forward.push(value()); break;
      case "--payload": opts.payload = value(); break;
      default:
        if (a.startsWith("--") || opts.url) throw new Error(`unexpected argument ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url || !opts.topic) throw new Error("usage: mqttjs_client.js URL --topic T [--ca FILE] ...");
  return opts;
}

function fail(err) {
  console.error(`mqttjs_client: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}

async function main() {
  const opts = parse(process.argv.slice(2));
  const options = {
    protocolVersion: opts.version,
    clientId: opts.id || `mqttjs-${process.pid}`,
    clean: true,
    reconnectPeriod: 0, // one attempt: a refusal is an error, not a retry loop
    connectTimeout: 5000,
  };
  if (opts.ca) {
    options.ca = fs.readFileSync(opts.ca);
    options.rejectUnauthorized = true;
  }
  const client = mqtt.connect(opts.url, options);
  const received = [];
  let expected = null;
  const echoed = new Promise((resolve) => {
    expected = resolve;
  });
  client.on("message", (topic, payload, packet) => {
    received.push({ topic, payload: payload.toString("utf8"), qos: packet.qos, retain: packet.retain });
    if (topic === opts.topic) expected();
  });
  const connack = await new Promise((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
  client.on("error", fail);
  const granted = await client.subscribeAsync(opts.topic, { qos: 1 });
  await client.publishAsync(opts.topic, opts.payload, { qos: 1 });
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("own message not received in 5 s")), 5000);
  });
  await Promise.race([echoed, timeout]);
  clearTimeout(timer);
  for (const topic of opts.forward) {
    await client.publishAsync(topic, opts.payload, { qos: 1 });
  }
  await client.endAsync();
  const result = {
    url: opts.url,
    protocolVersion: opts.version,
    connack: { sessionPresent: connack.sessionPresent, returnCode: connack.returnCode ?? connack.reasonCode ?? 0 },
    granted: granted.map((g) => ({ topic: g.topic, qos: g.qos })),
    received,
  };
  console.log(JSON.stringify(result));
}

main().catch(fail);
