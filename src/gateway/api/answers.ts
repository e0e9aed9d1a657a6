// The API's answers as zod schemas, for the OpenAPI document (openapi.ts): built from the task's own
// schemas (task/schema.ts: statuses, verdicts, limits, step and test reports), and held to the types the
// routes answer with (task/present.ts, task/events.ts, ExecutorInfo) by the compile-time checks at the
// end, so that the document cannot drift from what the routes send.
import { z } from 'zod';
import type { JudicatorAnswer } from '../client';
import type { TaskChange } from '../../task/events';
import type { PresentedBrief, PresentedTask } from '../../task/present';
import { countSchema, stepLimitsSchema, stepReportSchema, taskStatusSchema, taskVerdictSchema, testModeSchema, testReportSchema } from '../../task/schema';
import { ReturnCode, type ExecutorInfo } from '../../task/types';

export const resultCodeSchema = z
  .union(Object.values(ReturnCode).map((code) => z.literal(code)) as [z.ZodLiteral<number>, z.ZodLiteral<number>, ...z.ZodLiteral<number>[]])
  .meta({ description: 'The result code: 0 OK, 1 ERROR, 2 NOT_EXIST, 3 TOO_LARGE, 4 INVALID_INPUT, 5 UNAUTHORIZED.' });

const taskId = z.string().regex(/^[a-f0-9]{24}$/).meta({ description: 'A task id: 24 lower-case hex characters.' });
const isoTime = z.string().meta({ description: "An ISO-8601 time in UTC ('' when unknown)." });
const verdict = taskVerdictSchema.nullable().meta({ description: "The task's verdict once it is done (null before, and for Cancelled and Unknown error)." });

/** What every answer carries. */
export const answerSchema = z.object({
  result: resultCodeSchema,
  message: z.string().optional().meta({ description: 'Why, when the result is not OK.' }),
});

export const errorAnswerSchema = answerSchema.extend({
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .meta({ description: 'Every bad field of a submission (HTTP 400), each with what is wrong with it.' }),
});

export const briefSchema = z
  .object({
    id: taskId,
    user: countSchema,
    add_time: isoTime,
    done: z.boolean(),
    status: taskStatusSchema.meta({ description: 'The status: 0 Pending, 1 Compiling, 2 Compile failed, 3 Running, 4 Run failed, 5 Success, 6 Retrying, 7 Cancelled, 8 Unknown error.' }),
    executor: z.string().nullable(),
    report_time: isoTime,
    verdict: verdict.optional(),
  })
  .meta({ id: 'TaskBrief' });

const presentedJudge = z.object({
  mode: testModeSchema,
  checker: z.union([
    z.object({ kind: z.enum(['exact', 'tokens']) }),
    z.object({ kind: z.literal('float'), error: z.number() }),
    z.object({ kind: z.literal('program'), source_name: z.string(), source: z.string() }),
  ]),
  tests: z.array(z.object({ name: z.string(), input: z.string(), output: z.string() })),
});

export const taskSchema = briefSchema
  .extend({
    compile: z.object({ source: z.boolean(), command: z.string(), timeout: countSchema, limits: stepLimitsSchema.optional() }),
    execute: z.object({ input: z.string(), data: z.boolean(), command: z.string(), timeout: countSchema, standard: z.string(), limits: stepLimitsSchema.optional() }),
    network: z.boolean().optional(),
    judge: presentedJudge.optional(),
    callback_url: z.string().optional(),
    retries: z.number().int().min(0),
    result: z
      .object({
        compile_output: z.string(),
        compile_error: z.string(),
        execute_output: z.string(),
        execute_error: z.string(),
        accepted: z.boolean().nullable(),
        compile: stepReportSchema.nullable(),
        execute: stepReportSchema.nullable(),
        verdict,
        tests: z.array(testReportSchema),
      })
      .nullable(),
  })
  .meta({ id: 'Task' });

export const executorSchema = z
  .object({
    id: z.string(),
    hostname: z.string(),
    report_time: isoTime,
    host: z.string().optional(),
    slots: z.number().int().optional(),
    vacant: z.number().int().optional(),
    started: z.string().optional(),
    alive: z.boolean().optional(),
    languages: z.array(z.object({ name: z.string(), version: z.string() })).optional(),
    sandbox: z
      .object({
        kind: z.enum(['bwrap', 'none']),
        how: z.string(),
        network: z.string(),
        limits: z.record(z.string(), z.string()).meta({ description: 'Each limit and what enforces it ("NOT ENFORCED: ..." when nothing does).' }),
      })
      .optional()
      .meta({ description: "The executor's task sandbox, as it registered it." }),
  })
  .meta({ id: 'Executor' });

/** GET /api/whoami: whose token the request carries. */
export const whoamiAnswerSchema = answerSchema
  .extend({ admin: z.boolean(), user: z.number().int().nullable(), tokens_required: z.boolean() })
  .meta({ id: 'WhoAmI' });

/** One entry of GET /api/languages. */
export const languageCountSchema = z
  .object({ name: z.string(), version: z.string(), executors: z.number().int() })
  .meta({ id: 'LanguageCount' });

export const judicatorSchema = z
  .object({
    name: z.string().meta({ description: "The original's key path: /judicator/service/<name>." }),
    address: z.string(),
    leader: z.boolean(),
  })
  .meta({ id: 'Judicator' });

/** The data of the event stream's events. */
export const taskEventSchema = z
  .object({ id: taskId, user: countSchema, status: taskStatusSchema, done: z.boolean(), verdict, executor: z.string().nullable() })
  .meta({ id: 'TaskEvent' });
export const progressEventSchema = z
  .object({ id: taskId, step: z.enum(['compile', 'execute']), test: z.number().int(), of: z.number().int(), elapsed_ms: z.number() })
  .meta({ id: 'ProgressEvent' });
export const outputEventSchema = z
  .object({ id: taskId, stream: z.enum(['stdout', 'stderr']), step: z.enum(['compile', 'execute']), test: z.number().int().optional(), text: z.string() })
  .meta({ id: 'OutputEvent' });

// ---- compile-time checks: the schemas describe exactly what the routes send ----

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** What a route sends fits its schema, and the two have the same fields. */
type Covers<Schema, Sent> = [Sent] extends [Schema] ? Same<keyof Schema, keyof Sent> : false;
type Check<T extends true> = T;
export type AnswerChecks = [
  Check<Covers<z.infer<typeof taskEventSchema>, TaskChange>>,
  Check<Covers<z.infer<typeof judicatorSchema>, JudicatorAnswer>>,
  Check<Covers<z.infer<typeof executorSchema>, ExecutorInfo>>,
  Check<Covers<z.infer<typeof briefSchema>, PresentedBrief>>,
  Check<Covers<z.infer<typeof taskSchema>, PresentedTask>>,
  Check<Covers<NonNullable<z.infer<typeof taskSchema>['result']>, NonNullable<PresentedTask['result']>>>,
];
