// Waiting for a condition with a deadline: tests never sleep a fixed time and hope.
export async function waitFor<T>(
  condition: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  options: { timeoutMs?: number; intervalMs?: number; what: string | (() => string) },
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
  const suffix = lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})` : '';
  const what = typeof options.what === 'function' ? options.what() : options.what;
  throw new Error(`timed out after ${options.timeoutMs ?? 20_000} ms waiting for ${what}${suffix}`);
}
