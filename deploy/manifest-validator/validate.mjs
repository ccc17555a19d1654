#!/usr/bin/env node
// validate.mjs - offline validation of Kubernetes and Knative Serving manifests.
//
//   node validate.mjs [--set NAME [--allow-secret S]... [--expect-fail]
//                     [--expect-error FRAGMENT]... FILE...]...
//
// Each --set is a group of YAML files that are deployed together (one `helm
// template` rendering, or the k8s/ directory). Every object in it is checked:
//   1. schema: the object's Kubernetes / Knative Serving schema (the
//      kubernetes-models packages), including unknown fields: the schema
//      validators read every property they know, so a property that no
//      validator read is one the schema does not have (a typo, or a field at
//      the wrong level);
//   2. spirt's deployment rules (Knative runtime contract, hardening, images);
//   3. references inside the set: Secrets, ServiceAccounts, Service selectors,
//      StatefulSet serviceName.
// With --expect-fail every object annotated spirt.dev/expect-error must FAIL
// with that message fragment, and every other object (helpers of a test
// case) must pass (a test of this validator). ConfigMaps annotated
// spirt.dev/embedded-manifest: <key> hold a manifest for kubectl: its
// objects are checked as members of the set. NetworkPolicies must select
// pods of the set and admit every connection the set's pods name in their
// environment (the step functions also those of the training driver).
// With --expect-error the set is a deliberately broken rendering that counts
// as one check: it passes when every given fragment is among its errors.
// Prints one line per failure and "<set>: N passed, M failed" per set, then
// "objects: N passed, M failed"; exits 1 when anything failed.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const KNATIVE_GROUPS = new Set([
  "serving.knative.dev", "autoscaling.internal.knative.dev", "networking.internal.knative.dev",
  "eventing.knative.dev", "messaging.knative.dev", "sources.knative.dev", "flows.knative.dev",
]);
const RESERVED_PORTS = new Set([8012, 8013, 8022, 9090, 9091]);
const RESERVED_ENV = new Set(["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"]);
const LOCAL_REGISTRIES = ["dev.local/", "kind.local/"];
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

// ---------------------------------------------------------------- models ---
const modelCache = new Map();

async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (modelCache.has(key)) return modelCache.get(key);
  let spec = null;
  if (typeof apiVersion === "string" && typeof kind === "string" && /^[A-Za-z0-9]+$/.test(kind)) {
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    if (group === "") spec = `kubernetes-models/${apiVersion}/${kind}`;
    else if (KNATIVE_GROUPS.has(group)) spec = `@kubernetes-models/knative/${apiVersion}/${kind}`;
    else if (group === "monitoring.coreos.com") spec = `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
    else spec = `kubernetes-models/${apiVersion}/${kind}`;
  }
  let model = null;
  if (spec) {
    try {
      const mod = await import(spec);
      model = mod[kind] ?? null;
    } catch {
      model = null;
    }
  }
  modelCache.set(key, model);
  return model;
}

// Wraps `root` in proxies that record which properties a validator reads.
function trackReads(root) {
  const records = [];
  const wrap = (value, path) => {
    if (!value || typeof value !== "object") return value;
    const rec = { path, target: value, read: new Set(), enumerated: false };
    records.push(rec);
    const children = new Map();
    return new Proxy(value, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r);
        if (typeof k !== "string") return v;
        rec.read.add(k);
        if (!Object.prototype.hasOwnProperty.call(t, k) || !v || typeof v !== "object") return v;
        if (!children.has(k)) children.set(k, wrap(v, `${path}/${k}`));
        return children.get(k);
      },
      has(t, k) {
        if (typeof k === "string") rec.read.add(k);
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        rec.enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
  };
  const proxy = wrap(root, "");
  return {
    proxy,
    // Objects the validator never read from are free-form (no schema) and
    // objects it enumerated are maps: neither can have unknown fields.
    unknown() {
      const out = [];
      for (const r of records) {
        if (Array.isArray(r.target) || r.enumerated || r.read.size === 0) continue;
        for (const k of Object.keys(r.target)) if (!r.read.has(k)) out.push(`${r.path}/${k}`);
      }
      return out;
    },
  };
}

async function schemaErrors(obj) {
  const model = await modelFor(obj.apiVersion, obj.kind);
  if (!model) return [`no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
  const t = trackReads(structuredClone(obj));
  const errors = [];
  try {
    model.prototype.validate.call(t.proxy);
  } catch (e) {
    errors.push(`schema: ${String(e.message ?? e).replace(/^data/, "").replace(/, data/g, "; ")}`);
  }
  for (const u of t.unknown()) errors.push(`unknown field ${u}`);
  return errors;
}

// ------------------------------------------------------- non-k8s objects ---
// Files under k8s/ that are not API objects get a structural check of their own.
function kindClusterErrors(obj) {
  const errs = [];
  const allowed = new Set(["kind", "apiVersion", "name", "nodes", "networking", "featureGates",
    "runtimeConfig", "containerdConfigPatches", "kubeadmConfigPatches"]);
  for (const k of Object.keys(obj)) if (!allowed.has(k)) errs.push(`unknown kind config field ${k}`);
  if (obj.name !== undefined && !DNS_LABEL.test(obj.name)) errs.push(`bad cluster name ${obj.name}`);
  if (!Array.isArray(obj.nodes) || obj.nodes.length === 0) errs.push("kind config needs nodes");
  const nodeKeys = new Set(["role", "image", "extraPortMappings", "extraMounts", "labels", "kubeadmConfigPatches"]);
  let planes = 0;
  for (const [i, n] of (obj.nodes ?? []).entries()) {
    if (!["control-plane", "worker"].includes(n?.role)) errs.push(`nodes/${i}: role must be control-plane or worker`);
    if (n?.role === "control-plane") planes++;
    for (const k of Object.keys(n ?? {})) if (!nodeKeys.has(k)) errs.push(`nodes/${i}: unknown field ${k}`);
  }
  if (planes === 0) errs.push("kind config needs a control-plane node");
  return errs;
}

function kustomizationErrors(obj, setFiles) {
  const errs = [];
  const allowed = new Set(["apiVersion", "kind", "resources", "namespace", "labels", "commonLabels",
    "images", "patches", "configMapGenerator", "secretGenerator", "generatorOptions"]);
  for (const k of Object.keys(obj)) if (!allowed.has(k)) errs.push(`unknown kustomization field ${k}`);
  for (const r of obj.resources ?? []) {
    if (!setFiles.some((f) => f.endsWith(`/${r}`) || f === r)) errs.push(`resource ${r} is not in this set`);
  }
  return errs;
}

// ------------------------------------------------------------- policies ---
function podSpecOf(obj) {
  switch (obj.kind) {
    case "Pod": return obj.spec;
    case "Deployment": case "StatefulSet": case "DaemonSet": case "ReplicaSet": case "Job":
      return obj.spec?.template?.spec;
    case "CronJob": return obj.spec?.jobTemplate?.spec?.template?.spec;
    case "Service":
      return obj.apiVersion?.startsWith("serving.knative.dev/") ? obj.spec?.template?.spec : undefined;
    default: return undefined;
  }
}

function podLabelsOf(obj) {
  if (obj.kind === "CronJob") return obj.spec?.jobTemplate?.spec?.template?.metadata?.labels;
  return obj.spec?.template?.metadata?.labels;
}

function containerErrors(c, where) {
  const errs = [];
  const at = `${where} container ${c.name ?? "?"}`;
  if (!c.resources?.requests || !c.resources?.limits) errs.push(`${at}: needs resources.requests and resources.limits`);
  if (!c.imagePullPolicy) errs.push(`${at}: set imagePullPolicy`);
  if (LOCAL_REGISTRIES.some((r) => c.image?.startsWith(r)) && c.imagePullPolicy === "Always") {
    errs.push(`${at}: ${c.image} is a local image: imagePullPolicy must not be Always`);
  }
  if (/:latest$/.test(c.image ?? "") || !/:[^/]+$/.test(c.image ?? "")) errs.push(`${at}: pin the image tag (${c.image})`);
  const sc = c.securityContext ?? {};
  if (sc.allowPrivilegeEscalation !== false) errs.push(`${at}: securityContext.allowPrivilegeEscalation must be false`);
  if (sc.runAsNonRoot !== true) errs.push(`${at}: securityContext.runAsNonRoot must be true`);
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) errs.push(`${at}: drop ALL capabilities`);
  return errs;
}

function knativeErrors(obj) {
  const errs = [];
  const labels = obj.metadata?.labels ?? {};
  if (labels["networking.knative.dev/visibility"] !== "cluster-local") {
    errs.push("knative: label networking.knative.dev/visibility: cluster-local missing");
  }
  const tmpl = obj.spec?.template ?? {};
  const ann = tmpl.metadata?.annotations ?? {};
  const scale = {};
  for (const a of ["min-scale", "max-scale", "target"]) {
    const v = ann[`autoscaling.knative.dev/${a}`];
    if (v === undefined) errs.push(`knative: revision annotation autoscaling.knative.dev/${a} missing`);
    else if (typeof v !== "string" || !/^[0-9]+$/.test(v)) errs.push(`knative: autoscaling.knative.dev/${a} must be an integer string, got ${JSON.stringify(v)}`);
    else scale[a] = Number(v);
  }
  if (scale["max-scale"] > 0 && scale["min-scale"] > scale["max-scale"]) errs.push("knative: min-scale > max-scale");
  const spec = tmpl.spec ?? {};
  if (spec.containerConcurrency === undefined) errs.push("knative: set containerConcurrency");
  if (spec.containerConcurrency > 0 && scale.target > spec.containerConcurrency) {
    errs.push("knative: autoscaling target above containerConcurrency");
  }
  if (spec.timeoutSeconds === undefined) errs.push("knative: set timeoutSeconds");
  else if (spec.timeoutSeconds < 1 || spec.timeoutSeconds > 600) errs.push(`knative: timeoutSeconds ${spec.timeoutSeconds} outside 1..600`);
  for (const f of ["nodeSelector", "tolerations", "affinity", "securityContext", "initContainers"]) {
    if (spec[f] !== undefined) errs.push(`knative: spec.${f} needs a Knative feature flag; leave it out`);
  }
  // Knative admits Secret, ConfigMap and projected volumes by default; others need a flag.
  for (const v of spec.volumes ?? []) {
    if (!v.secret && !v.configMap && !v.projected) errs.push(`knative: volume ${v.name}: only secret, configMap and projected volumes work without a feature flag`);
  }
  const cs = spec.containers ?? [];
  if (cs.length !== 1) errs.push(`knative: expected one container, found ${cs.length}`);
  for (const c of cs) {
    const ports = c.ports ?? [];
    if (ports.length !== 1) errs.push("knative: exactly one container port");
    for (const p of ports) {
      if (!["http1", "h2c"].includes(p.name)) errs.push(`knative: port name must be http1 or h2c, got ${p.name}`);
      if (RESERVED_PORTS.has(p.containerPort)) errs.push(`knative: port ${p.containerPort} is reserved`);
    }
    for (const e of c.env ?? []) if (RESERVED_ENV.has(e.name)) errs.push(`knative: env ${e.name} is set by the platform`);
    const rp = c.readinessProbe?.httpGet;
    if (!rp || rp.path !== "/readyz") errs.push("knative: readinessProbe httpGet /readyz missing");
    for (const pr of [c.readinessProbe, c.livenessProbe]) {
      const port = pr?.httpGet?.port;
      if (port !== undefined && ports.length && port !== ports[0].containerPort) errs.push("knative: probes may only use the container port");
    }
    // Local images (loaded into the nodes) must never be pulled; images from
    // a registry are pulled, by digest when the chart was given one.
    const local = LOCAL_REGISTRIES.some((r) => c.image?.startsWith(r));
    if (local && c.imagePullPolicy !== "IfNotPresent") errs.push("knative: imagePullPolicy must be IfNotPresent for a local image");
    if (local && c.image.includes("@")) errs.push(`knative: ${c.image}: a local image cannot be referenced by digest`);
    if (!local && !/^[a-z0-9.-]+(:[0-9]+)?\//.test(c.image ?? "")) {
      errs.push(`knative: image ${c.image} names no registry (dev.local/, kind.local/ or a registry host)`);
    }
  }
  return errs;
}

function policyErrors(obj) {
  const errs = [];
  const md = obj.metadata ?? {};
  const name = md.name ?? md.generateName;
  if (!name) errs.push("metadata.name (or generateName) missing");
  else if (!DNS_SUBDOMAIN.test(name.replace(/-$/, "")) || name.length > 253) errs.push(`bad name ${name}`);
  const needsLabel = ["Service", "Deployment", "StatefulSet", "ConfigMap", "Secret", "CronJob", "Job", "Pod"].includes(obj.kind);
  if (needsLabel && !md.labels?.["app.kubernetes.io/name"]) errs.push("label app.kubernetes.io/name missing");
  if (["Service", "StatefulSet", "Deployment"].includes(obj.kind) && md.name && md.name.length > 63) {
    errs.push(`name longer than 63: ${md.name}`);
  }
  if (obj.apiVersion?.startsWith("serving.knative.dev/") && obj.kind === "Service") {
    if (md.name && (!DNS_LABEL.test(md.name) || md.name.length > 63)) errs.push(`knative service name must be a DNS label: ${md.name}`);
    errs.push(...knativeErrors(obj));
  }
  const pod = podSpecOf(obj);
  if (pod) {
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) errs.push(...containerErrors(c, obj.kind));
    if (pod.automountServiceAccountToken === true) errs.push("automountServiceAccountToken: nothing here needs API access");
  }
  if (obj.kind === "StatefulSet") {
    for (const vct of obj.spec?.volumeClaimTemplates ?? []) {
      if (!vct.spec?.resources?.requests?.storage) errs.push(`volumeClaimTemplate ${vct.metadata?.name}: storage request missing`);
    }
  }
  // NATS's monitoring port has no authentication: never exposed.
  if (obj.apiVersion === "v1" && obj.kind === "Service") {
    for (const p of obj.spec?.ports ?? []) if (p.port === 8222 || p.targetPort === 8222 || p.targetPort === "monitor") errs.push("Service exposes the NATS monitoring port 8222 (unauthenticated)");
  }
  if (obj.kind === "NetworkPolicy") {
    for (const r of obj.spec?.ingress ?? []) {
      for (const p of r.ports ?? []) if (p.port === 8222 || p.port === "monitor") errs.push("NetworkPolicy admits the NATS monitoring port 8222");
    }
  }
  if (obj.kind === "Secret") {
    const hasData = Object.keys(obj.data ?? {}).length + Object.keys(obj.stringData ?? {}).length;
    if (!hasData) errs.push("secret without data");
    for (const [k, v] of Object.entries(obj.data ?? {})) {
      if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) errs.push(`data.${k} is not base64`);
    }
  }
  return errs;
}

// ------------------------------------------------------- set references ---
function matches(selector, labels) {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

// A LabelSelector (matchLabels + matchExpressions); {} selects everything.
function selects(sel, labels) {
  if (!sel) return false;
  if (!matches(sel.matchLabels ?? {}, labels ?? {})) return false;
  return (sel.matchExpressions ?? []).every((e) => {
    const has = Object.prototype.hasOwnProperty.call(labels ?? {}, e.key);
    const v = labels?.[e.key];
    switch (e.operator) {
      case "In": return has && (e.values ?? []).includes(v);
      case "NotIn": return !has || !(e.values ?? []).includes(v);
      case "Exists": return has;
      case "DoesNotExist": return !has;
      default: return false;
    }
  });
}

// Pods of the set: every object with a pod template, and its labels.
function podsOf(objs) {
  return objs.filter((o) => podSpecOf(o)).map((o) => ({ obj: o, labels: o.kind === "Pod" ? o.metadata?.labels : podLabelsOf(o) }));
}

// Connections a pod's env names: "<svc>[.ns...]:<port>" or a StatefulSet
// pod "<svc>-<i>.<svc>...:<port>" of a v1 Service of the set. The driver
// hands its data addresses to the step functions in every request, so the
// functions (pods with a spirt.dev/step label) need the driver's too.
function envFlows(pod, services) {
  const flows = [];
  const spec = podSpecOf(pod.obj);
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const e of c.env ?? []) {
      if (typeof e.value !== "string") continue;
      for (const s of services) {
        const n = s.metadata?.name;
        if (!n) continue;
        const re = new RegExp(`(^|[/,@])(${n}-[0-9]+\\.)?${n}(\\.[a-z0-9.-]*)?:([0-9]+)`, "g");
        for (const m of e.value.matchAll(re)) flows.push({ svc: s, port: Number(m[4]), via: e.name });
      }
    }
  }
  return flows;
}

function networkErrors(objs, add) {
  const pods = podsOf(objs);
  const policies = objs.filter((o) => o.kind === "NetworkPolicy");
  for (const np of policies) {
    if (!pods.some((p) => selects(np.spec?.podSelector, p.labels))) add(np, "podSelector selects no pod of this set");
  }
  if (!policies.length) return;
  const services = objs.filter((o) => o.apiVersion === "v1" && o.kind === "Service" && o.spec?.selector);
  const driverFlows = pods.filter((p) => p.labels?.["app.kubernetes.io/component"] === "train").flatMap((p) => envFlows(p, services));
  for (const client of pods) {
    let flows = envFlows(client, services);
    if (client.labels?.["spirt.dev/step"]) flows = flows.concat(driverFlows);
    for (const f of flows) {
      const sp = (f.svc.spec.ports ?? []).find((p) => p.port === f.port);
      const targets = pods.filter((p) => p !== client && matches(f.svc.spec.selector, p.labels));
      for (const t of targets) {
        const governing = policies.filter((np) => (np.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") && selects(np.spec?.podSelector, t.labels));
        if (!governing.length) continue;
        const allowed = governing.some((np) => (np.spec?.ingress ?? []).some((r) => {
          const fromOk = !r.from || r.from.some((fr) => !fr.namespaceSelector && !fr.ipBlock && selects(fr.podSelector, client.labels));
          const portOk = !r.ports || r.ports.some((p) => p.port === undefined || p.port === f.port || (sp && (p.port === sp.targetPort || p.port === sp.name)));
          return fromOk && portOk;
        }));
        if (!allowed) add(client.obj, `NetworkPolicy blocks ${describe(client.obj)} -> Service ${f.svc.metadata.name}:${f.port} (${f.via}; pods of ${describe(t.obj)})`);
      }
    }
  }
}

function referenceErrors(objs, allowSecrets) {
  const errs = new Map(); // obj -> [msg]
  const add = (o, m) => errs.set(o, [...(errs.get(o) ?? []), m]);
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const secrets = new Set(byKind("Secret").map((o) => o.metadata?.name));
  for (const s of allowSecrets) secrets.add(s);
  const sas = new Set(byKind("ServiceAccount").map((o) => o.metadata?.name));
  sas.add("default");
  const services = byKind("Service").filter((o) => o.apiVersion === "v1");
  const workloads = objs.filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind));
  for (const o of objs) {
    const pod = podSpecOf(o);
    if (!pod) continue;
    if (pod.serviceAccountName && !sas.has(pod.serviceAccountName)) add(o, `serviceAccountName ${pod.serviceAccountName} is not in this set`);
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !ref.optional && !secrets.has(ref.name)) add(o, `env ${e.name}: Secret ${ref.name} is not in this set`);
      }
      for (const e of c.envFrom ?? []) {
        if (e.secretRef && !e.secretRef.optional && !secrets.has(e.secretRef.name)) add(o, `envFrom: Secret ${e.secretRef.name} is not in this set`);
      }
    }
    // A referenced Secret key must exist in a Secret of the set.
    for (const c of pod.containers ?? []) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        const sec = ref && byKind("Secret").find((s) => s.metadata?.name === ref.name);
        if (sec && !(ref.key in (sec.data ?? {})) && !(ref.key in (sec.stringData ?? {}))) add(o, `env ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
      }
    }
  }
  for (const s of services) {
    const sel = s.spec?.selector;
    if (sel && !workloads.some((w) => matches(sel, podLabelsOf(w)))) add(s, "selector matches no workload in this set");
  }
  for (const w of byKind("StatefulSet")) {
    const svc = services.find((s) => s.metadata?.name === w.spec?.serviceName);
    if (!svc) add(w, `serviceName ${w.spec?.serviceName} is not a Service in this set`);
    const sel = w.spec?.selector?.matchLabels ?? {};
    if (!matches(sel, podLabelsOf(w))) add(w, "selector does not match the pod template labels");
  }
  for (const w of byKind("Deployment")) {
    if (!matches(w.spec?.selector?.matchLabels ?? {}, podLabelsOf(w))) add(w, "selector does not match the pod template labels");
  }
  const pods = podsOf(objs);
  for (const pdb of byKind("PodDisruptionBudget")) {
    if (!pods.some((p) => selects(pdb.spec?.selector, p.labels))) add(pdb, "selector matches no pod of this set");
  }
  for (const pm of byKind("PodMonitor")) {
    if (!pods.some((p) => selects(pm.spec?.selector, p.labels))) add(pm, "selector matches no pod of this set");
  }
  for (const rb of byKind("RoleBinding")) {
    const ref = rb.roleRef ?? {};
    if (ref.kind === "Role" && !byKind("Role").some((r) => r.metadata?.name === ref.name)) add(rb, `Role ${ref.name} is not in this set`);
    for (const s of rb.subjects ?? []) if (s.kind === "ServiceAccount" && !sas.has(s.name)) add(rb, `ServiceAccount ${s.name} is not in this set`);
  }
  networkErrors(objs, add);
  day2Errors(objs, add);
  return errs;
}

// --------------------------------------------------------------- day 2 ---
// What running it for long needs, checked on every set:
//   credentials are files: no env value from a Secret key that is a secret
//   (…PASSWORD, …TOKEN, …_KEY);
//   a pod that reads a Secret carries checksum/secret, so changing it rolls;
//   StatefulSets: a PodDisruptionBudget and a NetworkPolicy select their
//   pods, and with more than one replica a pod anti-affinity spreads them;
//   step functions (spirt.dev/step) are scraped: prometheus.io/scrape or a
//   PodMonitor that selects them.
const SECRET_KEY = /(PASSWORD|TOKEN|_KEY)$/;

function podAnnotationsOf(o) {
  if (o.kind === "Pod") return o.metadata?.annotations ?? {};
  if (o.kind === "CronJob") return o.spec?.jobTemplate?.spec?.template?.metadata?.annotations ?? {};
  return o.spec?.template?.metadata?.annotations ?? {};
}

function day2Errors(objs, add) {
  const pods = podsOf(objs);
  const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget");
  const policies = objs.filter((o) => o.kind === "NetworkPolicy");
  const monitors = objs.filter((o) => o.kind === "PodMonitor");
  for (const p of pods) {
    const o = p.obj;
    const spec = podSpecOf(o);
    let readsSecret = (spec.volumes ?? []).some((v) => v.secret || (v.projected?.sources ?? []).some((s) => s.secret));
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        readsSecret = true;
        if (SECRET_KEY.test(ref.key ?? "")) add(o, `env ${e.name} holds Secret key ${ref.key}: mount credentials as files (SPIRT_<NAME>_FILE)`);
      }
    }
    const ann = podAnnotationsOf(o);
    if (readsSecret && o.kind !== "Pod" && !ann["checksum/secret"]) add(o, "pod template reads a Secret but has no checksum/secret annotation (a credentials change would not roll it)");
    if (o.kind === "StatefulSet") {
      if (!pdbs.some((b) => selects(b.spec?.selector, p.labels))) add(o, "no PodDisruptionBudget selects its pods");
      if (!policies.some((np) => selects(np.spec?.podSelector, p.labels))) add(o, "no NetworkPolicy governs its pods");
      if ((o.spec?.replicas ?? 1) > 1 && !spec.affinity?.podAntiAffinity) add(o, "several replicas without pod anti-affinity: one node can hold them all");
    }
    if (p.labels?.["spirt.dev/step"] && ann["prometheus.io/scrape"] !== "true" && !monitors.some((m) => selects(m.spec?.selector, p.labels))) {
      add(o, "step function not scraped: no prometheus.io/scrape annotation and no PodMonitor selects it");
    }
  }
}

// ----------------------------------------------------------------- main ---
function parseArgs(argv) {
  const sets = [];
  let cur = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--set") { cur = { name: argv[++i], files: [], allowSecrets: [], expectFail: false, expectErrors: [] }; sets.push(cur); }
    else if (a === "--expect-error") cur.expectErrors.push(argv[++i]);
    else if (a === "--allow-secret") cur.allowSecrets.push(argv[++i]);
    else if (a === "--expect-fail") cur.expectFail = true;
    else if (a === "-h" || a === "--help") { console.log(readFileSync(new URL(import.meta.url)).toString().split("\n").slice(1, 20).join("\n")); process.exit(0); }
    else {
      if (!cur) { cur = { name: "manifests", files: [], allowSecrets: [], expectFail: false, expectErrors: [] }; sets.push(cur); }
      cur.files.push(a);
    }
  }
  return sets;
}

function describe(o) {
  const md = o.metadata ?? {};
  return `${o.kind ?? "?"}/${md.name ?? md.generateName ?? o.name ?? "?"}`;
}

async function checkSet(set) {
  const items = []; // {obj, file, errors}
  let parseFailures = 0;
  for (const file of set.files) {
    let docs;
    try {
      docs = parseAllDocuments(readFileSync(file, "utf8"));
    } catch (e) {
      console.log(`FAIL ${set.name} ${file}: ${e.message}`);
      parseFailures++;
      continue;
    }
    for (const d of docs) {
      if (d.errors.length) {
        console.log(`FAIL ${set.name} ${file}: YAML: ${d.errors.map((e) => e.message).join("; ")}`);
        parseFailures++;
        continue;
      }
      const obj = d.toJS();
      if (obj === null || obj === undefined) continue;
      if (typeof obj !== "object" || Array.isArray(obj)) {
        console.log(`FAIL ${set.name} ${file}: a document that is not a mapping`);
        parseFailures++;
        continue;
      }
      items.push({ obj, file, errors: [] });
      // A ConfigMap carrying a manifest for kubectl (annotation
      // spirt.dev/embedded-manifest: <key>): its objects join the set.
      const key = obj.kind === "ConfigMap" ? obj.metadata?.annotations?.["spirt.dev/embedded-manifest"] : undefined;
      if (key !== undefined) {
        const text = obj.data?.[key];
        if (typeof text !== "string") {
          items[items.length - 1].errors.push(`embedded manifest: no data key ${key}`);
          continue;
        }
        for (const ed of parseAllDocuments(text)) {
          const where = `${file}#${obj.metadata?.name}/${key}`;
          if (ed.errors.length) {
            items[items.length - 1].errors.push(`embedded manifest: YAML: ${ed.errors.map((e) => e.message).join("; ")}`);
            continue;
          }
          const eo = ed.toJS();
          if (eo && typeof eo === "object") items.push({ obj: eo, file: where, errors: [] });
        }
      }
    }
  }
  const apiObjs = items.filter((i) => !(i.obj.apiVersion?.startsWith("kind.x-k8s.io/") || i.obj.apiVersion?.startsWith("kustomize.config.k8s.io/")));
  for (const it of items) {
    const o = it.obj;
    if (o.apiVersion?.startsWith("kind.x-k8s.io/") && o.kind === "Cluster") it.errors.push(...kindClusterErrors(o));
    else if (o.apiVersion?.startsWith("kustomize.config.k8s.io/") && o.kind === "Kustomization") it.errors.push(...kustomizationErrors(o, set.files));
    else {
      if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") it.errors.push("apiVersion and kind required");
      else it.errors.push(...(await schemaErrors(o)), ...policyErrors(o));
    }
  }
  const refs = referenceErrors(apiObjs.map((i) => i.obj), set.allowSecrets);
  for (const it of items) it.errors.push(...(refs.get(it.obj) ?? []));
  const seen = new Set();
  for (const it of apiObjs) {
    const key = `${it.obj.apiVersion}/${it.obj.kind}/${it.obj.metadata?.namespace ?? ""}/${it.obj.metadata?.name ?? ""}`;
    if (it.obj.metadata?.name && seen.has(key)) it.errors.push("duplicate object in this set");
    seen.add(key);
  }

  if (set.expectErrors.length) {
    // The set is a deliberately broken rendering: it counts as one check,
    // passed when every expected error fragment is reported.
    const all = items.flatMap((it) => it.errors.map((e) => `${describe(it.obj)}: ${e}`));
    const missing = set.expectErrors.filter((want) => !all.some((e) => e.includes(want)));
    for (const m of missing) console.log(`FAIL ${set.name}: expected an error containing "${m}"; got: ${all.slice(0, 5).join(" | ") || "none"}`);
    console.log(`${set.name}: ${missing.length ? 0 : 1} passed, ${missing.length ? 1 : 0} failed`);
    return { passed: missing.length ? 0 : 1, failed: missing.length ? 1 : 0 };
  }
  let passed = 0;
  let failed = parseFailures;
  for (const it of items) {
    const want = it.obj.metadata?.annotations?.["spirt.dev/expect-error"];
    if (set.expectFail && want === undefined) {
      // A helper object of a test case: it must pass.
      if (it.errors.length === 0) passed++;
      else {
        failed++;
        for (const e of it.errors) console.log(`FAIL ${set.name} ${describe(it.obj)} (helper, must pass): ${e}`);
      }
    } else if (set.expectFail) {
      const hit = want && it.errors.some((e) => e.includes(want));
      if (hit) passed++;
      else {
        failed++;
        console.log(`FAIL ${set.name} ${describe(it.obj)}: expected an error containing "${want}", got: ${it.errors.join(" | ") || "none"}`);
      }
    } else if (it.errors.length === 0) passed++;
    else {
      failed++;
      for (const e of it.errors) console.log(`FAIL ${set.name} ${describe(it.obj)} (${it.file}): ${e}`);
    }
  }
  if (items.length === 0 && parseFailures === 0) {
    failed++;
    console.log(`FAIL ${set.name}: no objects`);
  }
  console.log(`${set.name}: ${passed} passed, ${failed} failed`);
  return { passed, failed };
}

const sets = parseArgs(process.argv.slice(2));
if (sets.length === 0) {
  console.error("usage: validate.mjs [--set NAME [--allow-secret S] [--expect-fail] FILE...]...");
  process.exit(2);
}
let passed = 0;
let failed = 0;
for (const s of sets) {
  const r = await checkSet(s);
  passed += r.passed;
  failed += r.failed;
}
console.log(`objects: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
