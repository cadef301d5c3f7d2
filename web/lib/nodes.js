/** The pack's node ids (permanent: they are saved in users' workflows) and what the web side does with them. */

/** Nodes that pay per image: they get the price badge, the status line and the run summary. */
export const ISOLATION_NODES = Object.freeze(["RunflowProductIsolation", "RunflowProductIsolationFromURL"]);

/** Every node of the pack that talks to Runflow, so a key error from any of them points to the setting. */
export const RUNFLOW_NODES = Object.freeze([...ISOLATION_NODES, "RunflowStageImage"]);

export function isIsolationNode(type) {
  return ISOLATION_NODES.includes(type);
}

export function isRunflowNode(type) {
  return RUNFLOW_NODES.includes(type);
}
