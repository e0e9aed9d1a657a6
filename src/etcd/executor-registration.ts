// What executor/service/<name> holds while an executor runs: written by the executor when it registers,
// read by the judicators (the key a report must carry, and what each live executor can run).
import { z } from 'zod';

/** Most languages one registration lists, and the longest name or version (an executor's own words). */
const MAX_LANGUAGES = 64;
const MAX_LANGUAGE_TEXT = 64;
/** Longest text of the sandbox's description (an executor's own words), and most limits it lists. */
const MAX_SANDBOX_TEXT = 1024;
const MAX_SANDBOX_LIMITS = 16;

export const executorRegistrationSchema = z.object({
  hostname: z.string(),
  slots: z.number().int().min(0),
  started: z.string(),
  /** Random per executor process: a report naming the executor must carry it. */
  key: z.string().min(1),
  /** The languages whose toolchains it found at start. */
  languages: z
    .array(z.object({ name: z.string().min(1).max(MAX_LANGUAGE_TEXT), version: z.string().min(1).max(MAX_LANGUAGE_TEXT) }))
    .max(MAX_LANGUAGES)
    .optional(),
  /** How it confines tasks: bwrap or none, and what enforces each limit. */
  sandbox: z
    .object({
      kind: z.enum(['bwrap', 'none']),
      how: z.string().max(MAX_SANDBOX_TEXT),
      network: z.string().max(MAX_SANDBOX_TEXT),
      limits: z.record(z.string().max(64), z.string().max(MAX_SANDBOX_TEXT)).refine((limits) => Object.keys(limits).length <= MAX_SANDBOX_LIMITS, 'too many limits'),
    })
    .optional()
    // A description it cannot take is left out, never the registration with it (its key lets it report).
    .catch(undefined),
});
export type ExecutorRegistration = z.infer<typeof executorRegistrationSchema>;

/** The registration in a key's value, or undefined when there is none or it is not one. */
export function parseExecutorRegistration(value: string | null | undefined): ExecutorRegistration | undefined {
  if (!value) return undefined;
  try {
    const parsed = executorRegistrationSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
