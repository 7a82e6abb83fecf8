// Packaging: the Kubernetes manifests of deploy/kubernetes. No cluster runs here, so every YAML
// document is checked against the Kubernetes API schemas offline (kubernetes-models' validators),
// and then for what the README relies on: labels and selectors that match, ports that line up
// from the config through the containers and probes to the Services and NetworkPolicy, the
// Secret keys the pod reads, the ConfigMap's tokengate.yaml through tokengate's own config loader,
// resources, and a non-root, read-only, capability-free security context.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import t from 'tap'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { parseConfig } from '../../../src/config/load.js'
import type { Config } from '../../../src/config/schema.js'
import { ConfigError } from '../../../src/errors.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const DIR = join(ROOT, 'deploy/kubernetes')

type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<string, unknown>
interface Doc {
  file: string
  obj: Obj
}

/** Every YAML document of every file in deploy/kubernetes; a YAML error fails the test run. */
function loadDocs(): Doc[] {
  const docs: Doc[] = []
  for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'), { uniqueKeys: true })) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]?.message}`)
      const obj = doc.toJS() as Obj | null
      if (obj) docs.push({ file, obj })
    }
  }
  return docs
}

const docs = loadDocs()

/** The model class (with its schema validator) for each apiVersion/kind the manifests use. */
const MODELS = {
  'apps/v1 Deployment': Deployment,
  'v1 Service': Service,
  'v1 ConfigMap': ConfigMap,
  'v1 Secret': Secret,
  'policy/v1 PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1 NetworkPolicy': NetworkPolicy,
} as const

function validate(obj: Obj): void {
  const Model = MODELS[`${obj.apiVersion} ${obj.kind}` as keyof typeof MODELS]
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`)
  // biome-ignore lint/suspicious/noExplicitAny: each model takes its own kind's shape; the schema decides.
  new Model(obj as any).validate()
}

function only<T>(kind: string, make: (o: Obj) => T): T {
  const found = docs.filter((d) => d.obj.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return make((found[0] as Doc).obj)
}

const deployment = only('Deployment', (o) => new Deployment(o as never))
const configMap = only('ConfigMap', (o) => new ConfigMap(o as never))
const secret = only('Secret', (o) => new Secret(o as never))
const pdb = only('PodDisruptionBudget', (o) => new PodDisruptionBudget(o as never))
const policy = only('NetworkPolicy', (o) => new NetworkPolicy(o as never))
const services = docs.filter((d) => d.obj.kind === 'Service').map((d) => new Service(d.obj as never))
const pod = deployment.spec!.template.spec!
const container = (name: string) => {
  const c = pod.containers.find((x) => x.name === name)
  if (!c) throw new Error(`no container ${name}`)
  return c
}
const gate = container('tokengate')
const pacs = container('pacs')

/** The env the tokengate container gets: literal values, and Secret values from `secretValues`. */
function containerEnv(secretValues: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const e of gate.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef
    env[e.name] = ref ? secretValues[ref.key] : e.value
  }
  return env
}

const REAL_SECRETS = { 'admin-key': 'a'.repeat(64), 'redis-password': 'r3dis', 'pacs-db-password': 'pg' }
const configText = configMap.data?.['tokengate.yaml'] ?? ''
let loaded: Config | undefined
/** The ConfigMap's config as the pod loads it (a ConfigError fails the test that asks for it). */
function podConfig(): Config {
  loaded ??= parseConfig(configText, 'configmap.yaml:tokengate.yaml', containerEnv(REAL_SECRETS))
  return loaded
}

/** A container port number by name (probes, Services and the NetworkPolicy name them). */
function portNumber(name: string | number | undefined): number | undefined {
  if (typeof name === 'number') return name
  return gate.ports?.find((p) => p.name === name)?.containerPort
}

t.test('every manifest is a Kubernetes object the API schemas accept', async (t) => {
  const kinds = docs.filter((d) => d.file !== 'kustomization.yaml').map((d) => `${d.file}: ${d.obj.kind}`)
  t.same(kinds.sort(), [
    'configmap.yaml: ConfigMap',
    'deployment.yaml: Deployment',
    'networkpolicy.yaml: NetworkPolicy',
    'pdb.yaml: PodDisruptionBudget',
    'secret.example.yaml: Secret',
    'service.yaml: Service',
    'service.yaml: Service',
  ])
  for (const d of docs.filter((x) => x.file !== 'kustomization.yaml')) {
    t.doesNotThrow(() => validate(d.obj), `${d.file}: ${d.obj.kind} ${d.obj.metadata?.name}`)
  }
})

t.test('the schema check is live: a broken Deployment is refused', async (t) => {
  const broken = structuredClone(docs.find((d) => d.obj.kind === 'Deployment')!.obj) as Obj & {
    spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } }
  }
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'http'
  t.throws(() => validate(broken), /containerPort must be integer/)
})

t.test(
  'the kustomization applies every manifest but the example Secret, with the images the pod runs',
  async (t) => {
    const k = parseYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as {
      kind: string
      resources: string[]
      images: { name: string; newName?: string; newTag?: string }[]
    }
    t.equal(k.kind, 'Kustomization')
    const manifests = readdirSync(DIR).filter((f) => /\.yaml$/.test(f) && f !== 'kustomization.yaml')
    t.same(
      [...k.resources].sort(),
      manifests.filter((f) => f !== 'secret.example.yaml').sort(),
      'every manifest is listed, the Secret with placeholders is not (apply -k never overwrites yours)',
    )
    const images = pod.containers.map((c) => (c.image ?? '').replace(/:[^/:]+$/, ''))
    t.same(k.images.map((i) => i.name).sort(), images.sort(), 'one images entry per container image')
  },
)

t.test('the Deployment, both Services, the PDB and the NetworkPolicy select the same pods', async (t) => {
  const labels = deployment.spec!.template.metadata?.labels ?? {}
  const within = (sel: Record<string, string> | undefined, what: string) => {
    t.ok(sel && Object.keys(sel).length > 0, `${what} has a selector`)
    for (const [k, v] of Object.entries(sel ?? {})) t.equal(labels[k], v, `${what} selects ${k}=${v}`)
  }
  within(deployment.spec!.selector.matchLabels, 'the Deployment')
  for (const s of services) within(s.spec?.selector, `Service ${s.metadata?.name}`)
  within(pdb.spec?.selector?.matchLabels, 'the PodDisruptionBudget')
  within(policy.spec?.podSelector.matchLabels, 'the NetworkPolicy')
  t.equal(pdb.spec?.minAvailable, 1)
  t.ok(
    (deployment.spec!.replicas ?? 1) > 1,
    'minAvailable: 1 leaves a drain room only with more than one replica',
  )
})

t.test(
  "ports line up from the config's listeners to the containers, probes, Services and NetworkPolicy",
  async (t) => {
    const config = podConfig()
    t.equal(portNumber('http'), config.listen.port, 'container port http is listen.port')
    t.equal(portNumber('ops'), config.metrics.port, 'container port ops is metrics.port')
    t.equal(portNumber('admin'), config.admin?.port, 'container port admin is admin.port')
    // Probes and Services reach the pod's address, not its loopback.
    t.equal(config.listen.host, '0.0.0.0')
    t.equal(config.metrics.host, '0.0.0.0')
    t.ok(config.metrics.enabled)
    // Behind an Ingress every client shares the controller's address unless it is trusted.
    t.ok(config.trustedProxies.length > 0, 'the Ingress in front is a trusted proxy')

    const targets = (name: string) =>
      services.find((s) => s.metadata?.name === name)?.spec?.ports?.map((p) => portNumber(p.targetPort))
    t.same(targets('tokengate'), [config.listen.port], 'the public Service sends only to listen.port')
    t.same(targets('tokengate-admin'), [config.admin?.port], 'the admin Service sends only to admin.port')

    const allowed = (policy.spec?.ingress ?? []).flatMap((r) =>
      (r.ports ?? []).map((p) => portNumber(p.port)),
    )
    t.same(allowed.sort(), [config.listen.port, config.metrics.port, config.admin?.port].sort())
    t.ok(
      (policy.spec?.ingress ?? []).every((r) => (r.ports ?? []).length > 0),
      'no rule admits every port (the PACS stays unreachable)',
    )
  },
)

t.test('the PACS is reachable only on loopback, through the mount tokengate forwards to', async (t) => {
  const config = podConfig()
  t.equal(pacs.ports, undefined, 'the PACS container declares no port')
  const pacsPort = pacs.livenessProbe?.tcpSocket?.port
  for (const m of config.mounts) {
    for (const url of [m.upstream, m.wado ?? m.upstream]) {
      const u = new URL(url)
      t.equal(u.hostname, '127.0.0.1', `${m.path} goes to loopback`)
      t.equal(Number(u.port), pacsPort, `${m.path} goes to the port the PACS container is probed on`)
    }
  }
  const env = Object.fromEntries((pacs.env ?? []).map((e) => [e.name, e.value]))
  t.equal(env['ORTHANC__REMOTE_ACCESS_ALLOWED'], 'false', 'Orthanc answers loopback clients only')
  t.equal(env['ORTHANC__DICOM_SERVER_ENABLED'], 'false', 'no DICOM listener bypassing tokengate')
  t.equal(config.scoping, 'studies', 'Orthanc knows no albums: tokengate scopes by study sets')
  // The orthancteam entrypoint writes these at start; the root filesystem is read-only.
  const writable = (pacs.volumeMounts ?? []).map((v) => v.mountPath)
  for (const path of ['/tmp', '/usr/share/orthanc/plugins'])
    t.ok(writable.includes(path), `${path} is a volume`)
  t.equal(env['GENERATE_HOST_ID_IF_MISSING'], 'false', 'the entrypoint does not write /etc/hostid')
})

t.test(
  "the ConfigMap's tokengate.yaml loads with tokengate's config loader from the pod's env alone",
  async (t) => {
    const config = podConfig()
    t.equal(config.admin?.key, REAL_SECRETS['admin-key'], 'admin.key comes from the Secret')
    t.equal(config.redis.sentinel?.password, REAL_SECRETS['redis-password'], 'the Redis password too')
    // Every ${VAR} is set by the container: an env without them fails, naming them.
    const err = t.throws(() => parseConfig(configText, 'tokengate.yaml', {})) as ConfigError
    t.ok(err instanceof ConfigError)
    const missing = [...err.message.matchAll(/environment variable (\w+) is not set/g)].map((m) => m[1])
    t.ok(missing.length > 0)
    for (const name of missing)
      t.ok(
        gate.env?.some((e) => e.name === name),
        `the container sets ${name}`,
      )
    const mountPath = gate.volumeMounts?.find((v) => v.name === 'config')?.mountPath
    const file = gate.env?.find((e) => e.name === 'TOKENGATE_CONFIG')?.value
    t.equal(file, `${mountPath}/tokengate.yaml`, 'TOKENGATE_CONFIG names the mounted ConfigMap key')
  },
)

t.test('the Secret holds every key the pod reads, and its placeholders cannot start tokengate', async (t) => {
  const refs = pod.containers.flatMap((c) => (c.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef ?? []))
  t.ok(refs.length >= 3)
  for (const ref of refs) {
    t.equal(ref.name, secret.metadata?.name, `${ref.key} is read from the Secret`)
    t.ok(ref.key in (secret.stringData ?? {}), `the Secret has ${ref.key}`)
  }
  const env = containerEnv(secret.stringData ?? {})
  t.throws(
    () => parseConfig(configText, 'tokengate.yaml', env),
    /admin\.key: the admin key must be at least 32/,
  )
})

t.test('the ops listener carries the probes: /readyz for readiness, /healthz for liveness', async (t) => {
  const config = podConfig()
  t.equal(gate.readinessProbe?.httpGet?.path, '/readyz')
  t.equal(gate.livenessProbe?.httpGet?.path, '/healthz')
  t.equal(gate.startupProbe?.httpGet?.path, '/healthz')
  for (const p of [gate.readinessProbe, gate.livenessProbe, gate.startupProbe]) {
    t.equal(portNumber(p?.httpGet?.port), config.metrics.port)
  }
})

t.test('shutdown fits the grace period, and the PACS outlives tokengate’s drain', async (t) => {
  const config = podConfig()
  const pause = (c: typeof gate) => Number(c.lifecycle?.preStop?.exec?.command?.at(-1))
  const drainSeconds = pause(gate) + config.shutdown.deadline / 1000
  t.ok((pod.terminationGracePeriodSeconds ?? 30) > drainSeconds, 'grace > preStop pause + shutdown.deadline')
  t.ok(pause(pacs) >= drainSeconds, 'the PACS is not stopped under requests still in flight')
})

t.test(
  'every container has requests and limits, runs as non-root, read-only, with no capabilities',
  async (t) => {
    t.equal(pod.securityContext?.runAsNonRoot, true)
    t.ok((pod.securityContext?.runAsUser ?? 0) > 0)
    t.equal(pod.automountServiceAccountToken, false)
    for (const c of pod.containers) {
      t.ok(
        c.resources?.requests?.['cpu'] && c.resources.requests['memory'],
        `${c.name}: cpu and memory requested`,
      )
      t.ok(c.resources?.limits?.['memory'], `${c.name}: memory limited`)
      t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${c.name}: read-only root`)
      t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`)
      t.same(c.securityContext?.capabilities?.drop, ['ALL'], `${c.name}: every capability dropped`)
      t.notOk(c.securityContext?.runAsUser === 0 || c.securityContext?.privileged, `${c.name}: not root`)
    }
    t.ok(gate.resources?.limits?.['cpu'], 'tokengate: cpu limited (one worker uses one core)')
  },
)

t.test("the README's Redis variants for Kubernetes load in place of the ConfigMap's", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(
    readme.indexOf('\n## Kubernetes'),
    readme.indexOf('\n## ', readme.indexOf('\n## Kubernetes') + 1),
  )
  const blocks = [...section.matchAll(/```yaml\n(redis:[\s\S]*?)```/g)].map((m) => m[1] as string)
  t.ok(blocks.length >= 2, 'a Sentinel and a Cluster variant at least')
  const rest = configText.replace(/^redis:\n(?: {2}.*\n|\s*\n)*/m, '')
  t.not(rest, configText, "the ConfigMap's redis section was cut out")
  for (const block of blocks) {
    const c = parseConfig(`${block}\n${rest}`, 'README redis block', containerEnv(REAL_SECRETS))
    t.ok(c.redis.sentinel || c.redis.cluster || c.redis.url, block.split('\n')[0] ?? '')
  }
})

const run = spawnSync('kubectl', ['kustomize', DIR], { encoding: 'utf8', timeout: 30_000 })
const noKubectl = run.error ? 'kubectl is not installed: the kustomization was checked above' : false
t.test(
  'kubectl kustomize renders the same objects (where kubectl is installed)',
  { skip: noKubectl },
  async (t) => {
    t.equal(run.status, 0, run.stderr)
    const rendered = parseAllDocuments(run.stdout).map((d) => d.toJS() as Obj)
    t.same(
      rendered.map((o) => `${o.kind}/${o.metadata?.name}`).sort(),
      docs
        .filter((d) => !['kustomization.yaml', 'secret.example.yaml'].includes(d.file))
        .map((d) => `${d.obj.kind}/${d.obj.metadata?.name}`)
        .sort(),
    )
    for (const o of rendered)
      t.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata?.name} after kustomize`)
  },
)
