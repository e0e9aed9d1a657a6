// The task's limits: sizes and counts every part of kv2 checks a task against, named once here. The
// gateway, the judicator and the executor import them; defaults an operator can change (--task-max-size)
// start from these.

/** The original's limit on a task's stored size: 15.5 MiB (16 MiB minus 512 KiB). */
export const DEFAULT_TASK_MAX_SIZE = 16_252_928;
/** The range --task-max-size may be set in: a MongoDB document holds at most 16 MiB. */
export const MIN_TASK_MAX_SIZE = 1024;
export const MAX_TASK_MAX_SIZE = 16 * 1024 * 1024;

/** The original's whole numbers (user, timeouts, search limits and pages): 0 to 2^31 - 1. */
export const MAX_INT = 2_147_483_647;

/** Largest text field (command, input, standard) once inflated, bytes: a zlib bomb is refused at the edge. */
export const MAX_INFLATED_TEXT_BYTES = 256 * 1024 * 1024;

/** Longest file name accepted in a name+text pair, in UTF-8 bytes (a common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255;

/** Most CPU seconds a task may ask for one step (a day). */
export const MAX_STEP_CPU_TIME_S = 86_400;

/** Most processes a task may ask for one step. */
export const MAX_STEP_PROCESSES = 1_000_000;

/** How far (ms) the time in a client-chosen task id may be from the judicator's clock: "made just now". */
export const MAX_CLIENT_ID_SKEW_MS = 10 * 60_000;

/** The original's display truncation of long text: more than this many characters become these + "...". */
export const TRUNCATE_AT = 1000;

/** Most tests one task may carry (issue 17); their bytes count toward --task-max-size like every field. */
export const MAX_JUDGE_TESTS = 1000;

/** A test's name: what `<name>.in` / `<name>.out` in a tests zip may be called, and what results show. */
export const TEST_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Longest callback_url, in characters. */
export const MAX_CALLBACK_URL_LENGTH = 2048;

/** Most wall time a task may ask for one step, ms (a day, as MAX_STEP_CPU_TIME_S). */
export const MAX_STEP_WALL_MS = 86_400_000;

/** Most memory and stack a task may ask for one step, KiB (1 TiB: the executor's maxima bound it further). */
export const MAX_STEP_MEMORY_KB = 1024 ** 3;

/** Largest tolerance of the float checker (absolute or relative). */
export const MAX_FLOAT_CHECKER_ERROR = 1;

/** Bytes a tests zip may unpack to (it is read into the gateway's memory; packed, it counts toward --task-max-size). */
export const MAX_TESTS_ZIP_UNPACKED_BYTES = 128 * 1024 * 1024;
