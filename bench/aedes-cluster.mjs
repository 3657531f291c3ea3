// One Aedes 1.x node of a cluster, for bench/aedes-cluster.sh: mqemitter-redis (messages
// between the nodes over Redis pub/sub) and aedes-persistence-redis (subscriptions,
// sessions, retained, QoS 1 in-flight) on the same Redis, as Aedes' README describes for
// clusters. Otherwise Aedes' defaults, as ../shared/bench/peers/aedes-server.mjs
// (concurrency 100), and net.createServer({ noDelay: true }) on 127.0.0.1.
//
//   AEDES_DIR=/tmp/bench-tools/aedes-cluster node aedes-cluster.mjs PORT REDIS_PORT NODE_ID
//
// The packages are resolved from $AEDES_DIR/node_modules (bench/install-aedes-cluster.sh).
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const dir = process.env.AEDES_DIR || '/tmp/bench-tools/aedes-cluster'
const require = createRequire(dir + '/')
const { Aedes } = await import(pathToFileURL(require.resolve('aedes')).href)
const mqemitterRedis = require('mqemitter-redis')
const persistenceRedis = require('aedes-persistence-redis')

const port = Number(process.argv[2])
const redisPort = Number(process.argv[3])
const id = process.argv[4] || `aedes-${port}`
const redis = { host: '127.0.0.1', port: redisPort, family: 4 }

const mq = mqemitterRedis({ ...redis })
const persistence = persistenceRedis({ ...redis })
const aedes = await Aedes.createBroker({ id, mq, persistence })
const server = createServer({ noDelay: true }, aedes.handle)
server.listen(port, '127.0.0.1', () => {
  console.error(`aedes ${aedes.version} node ${id} on 127.0.0.1:${port}, redis 127.0.0.1:${redisPort}`)
})
const stop = () => { server.close(); aedes.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
