//! The Kubernetes export: an Indexed Job whose pod K runs shard K (`JOB_COMPLETION_INDEX`),
//! with Guaranteed QoS (whole CPUs, requests equal to limits, so the static CPU manager gives
//! the pod CPUs of its own) and the security context benchbox's root mode needs.

use std::fmt::Write as _;

use super::{Export, dns_name, yaml_quote};

/// Memory for the pod beyond the largest cell's limit (benchbox, the container's init).
const OVERHEAD_MIB: u64 = 512;
/// The pod's memory when no cell has a memory limit.
const DEFAULT_MIB: u64 = 2048;

pub(super) fn render(e: &Export, image: &str, pvc: Option<&str>) -> String {
    let name = dns_name(&e.matrix.name);
    let needs = e.needs();
    let memory_mib = needs
        .memory
        .map_or(DEFAULT_MIB, |m| m.div_ceil(1 << 20) + OVERHEAD_MIB);
    let command = format!(
        "exec benchbox {}",
        e.run_args("$JOB_COMPLETION_INDEX", "/results")
    );
    let mut s = String::new();
    writeln!(
        s,
        "# benchbox: matrix `{}` ({}) in {} shard(s) by {}, as a Kubernetes Indexed Job.",
        e.matrix.name, e.file, e.shards, e.by
    )
    .unwrap();
    s.push_str(
        "# Pod K runs `benchbox run --shard K/N` (K = JOB_COMPLETION_INDEX) and writes\n\
         # /results/NAME/<run-id>-shard-K.\n\
         # Collect and merge: with a PersistentVolumeClaim (--pvc, ReadWriteMany), run one more pod\n\
         # mounting it at /results once the Job is complete:\n\
         #   benchbox merge /results/NAME/*-shard-* --out /results/NAME/merged\n\
         # With the default emptyDir the results vanish with each pod: copy them out first\n\
         # (`kubectl cp POD:/results ./results` while the pod runs; add a sleep after the run),\n\
         # or use a PVC.\n\
         # Guaranteed QoS: CPU requests equal limits, whole CPUs, so a node with the static CPU\n\
         # manager policy gives the pod CPUs of its own. benchbox checks before its first\n\
         # invocation that the CPUs the matrix pins are among the pod's (exit 3 otherwise).\n\
         # Root mode (every limit, the cgroup counters) needs a privileged container: benchbox\n\
         # makes namespaces, mounts and cgroups for each invocation.\n",
    );
    if let Some(set) = &needs.pinned {
        writeln!(
            s,
            "# The matrix pins CPUs {set}: the static CPU manager chooses the pod's CPU ids, so pin CPUs\n# the node will give, or leave `cpus` out of [limits] and rely on the pod's own CPUs."
        )
        .unwrap();
    }
    let volume = match pvc {
        Some(claim) => format!(
            "        - name: results\n          persistentVolumeClaim:\n            claimName: {}\n",
            yaml_quote(claim)
        ),
        None => "        - name: results\n          emptyDir: {}\n".to_string(),
    };
    write!(
        s,
        "apiVersion: batch/v1
kind: Job
metadata:
  name: benchbox-{name}
  labels:
    app.kubernetes.io/name: benchbox
    benchbox/matrix: {name}
spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {n}
  backoffLimit: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/name: benchbox
        benchbox/matrix: {name}
    spec:
      restartPolicy: Never
      containers:
        - name: benchbox
          image: {image}
          command: [\"/bin/sh\", \"-c\"]
          args:
            - {command}
          resources:
            requests:
              cpu: \"{cpus}\"
              memory: {memory_mib}Mi
            limits:
              cpu: \"{cpus}\"
              memory: {memory_mib}Mi
          securityContext:
            privileged: true
            runAsUser: 0
          volumeMounts:
            - name: results
              mountPath: /results
      volumes:
{volume}",
        n = e.shards,
        image = yaml_quote(image),
        command = yaml_quote(&command),
        cpus = needs.cpus,
    )
    .unwrap();
    s
}
