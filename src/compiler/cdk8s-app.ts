/**
 * The entry `cdk8s synth` runs (cdk8s.yaml): the hand-written plans in ./plans (or $CAPSULE_PLANS) compiled
 * into the same manifests as `capsule plan`, one `<cluster>.k8s.yaml` per plan in the cdk8s output directory. Scanning
 * CnvrgApps needs a cluster or manifest files; that is `capsule plan`'s job, not this file's.
 */
import { App } from "cdk8s";
import { loadPlans } from "../plan/load.js";
import { mergePlans } from "../plan/merge.js";
import { buildApp } from "./cdk8s-chart.js";

const plans = mergePlans([], await loadPlans(process.env["CAPSULE_PLANS"] ?? "plans"));
const app = buildApp(plans, new App({ outdir: process.env["CDK8S_OUTDIR"] ?? "dist/cdk8s" }));
app.synth();
