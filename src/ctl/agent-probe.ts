/** What the local agent's health listener answered: an HTTP status and the body (JSON when it parses). */
export interface AgentProbe {
  readonly status: number | 'unreachable';
  readonly body: unknown;
}

/** GET http://<addr><path> with a 2 s deadline; "unreachable" when nothing answers in time. */
export async function probeAgent(addr: string, path: string): Promise<AgentProbe> {
  try {
    const res = await fetch(`http://${addr}${path}`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* plain text */ }
    return { status: res.status, body };
  } catch {
    return { status: 'unreachable', body: undefined };
  }
}
