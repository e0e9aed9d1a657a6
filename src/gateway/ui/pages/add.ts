// Add: the original's form (user; compile source as a zip or a name + text pair, command, timeout;
// execute input, data as a zip or a name + text pair, command, timeout, expected output), plus issue 17's
// tests (a zip or JSON), test mode, checker and callback, and the optional per-step limits. Checked here with the gateway's rules, sent as multipart, and on success
// the Task page of the new task is shown.
import { ApiError, api } from '../api';
import { countProblem, fileNameProblem, positiveProblem } from '../checks';
import { h, replace } from '../dom';
import type { Page } from '../page';

/** The README's example: a C++ "Hello World" that greets its input. */
export const CPP_EXAMPLE = {
  user: '0',
  compile_source_name: 'main.cpp',
  compile_source_str: '#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n    std::cin >> name;\n    std::cout << "Hello, " << name << "!" << std::endl;\n    return 0;\n}\n',
  compile_command: 'g++ -O2 -o main main.cpp',
  compile_timeout: '30',
  execute_input: 'World\n',
  execute_command: './main',
  execute_timeout: '5',
  execute_standard: 'Hello, World!\n',
};

const LIMITS: [string, string][] = [
  ['time_limit_ms', 'CPU time (ms)'],
  ['wall_limit_ms', 'Wall time (ms)'],
  ['memory_limit_kb', 'Peak memory (KiB)'],
  ['stack_limit_kb', 'Stack (KiB)'],
  ['cpu_time', 'CPU seconds'],
  ['memory', 'Memory (bytes)'],
  ['processes', 'Processes'],
  ['file_size', 'Largest file (bytes)'],
  ['output', 'Output kept (bytes)'],
];

/** The checkers a task may name (issue 17); float takes its tolerance from its own field. */
const CHECKERS: [string, string][] = [
  ['exact', 'Exact (trailing spaces ignored)'],
  ['tokens', 'Tokens (any white space)'],
  ['float', 'Numbers within a tolerance'],
  ['program', 'A checker program (testlib)'],
];

export const addPage: Page = (context) => {
  const input = (name: string, attrs: Record<string, string | boolean> = {}) => h('input', { name, id: `add-${name}`, autocomplete: 'off', ...attrs });
  const area = (name: string, rows: number, placeholder = '') => h('textarea', { name, id: `add-${name}`, rows, spellcheck: 'false', placeholder });
  const field = (label: string, control: HTMLElement, hint?: string) =>
    h('label', { class: 'field' }, h('span', null, label), control, hint ? h('small', { class: 'muted' }, hint) : null);
  const errors = new Map<string, HTMLElement>();
  const withError = (name: string, element: HTMLElement) => {
    const message = h('small', { class: 'field-error', id: `error-${name}`, hidden: true });
    errors.set(name, message);
    element.appendChild(message);
    return element;
  };

  const form = h(
    'form',
    { id: 'add-form', novalidate: true },
    h('section', { class: 'card' }, h('h2', null, 'Task'), h('div', { class: 'grid' }, withError('user', field('User id', input('user', { inputmode: 'numeric', value: '0', required: true }), 'A number that groups your tasks (0 or more).')))),
    h(
      'div',
      { class: 'columns' },
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Compile'),
      withError('compile_source', field('Source (zip)', input('compile_source', { type: 'file', accept: '.zip,application/zip' }), 'Unpacked in the task directory. Or give one file below.')),
      h(
        'div',
        { class: 'grid pair' },
        withError('compile_source_name', field('Source file name', input('compile_source_name', { maxlength: '255', placeholder: 'main.cpp' }))),
      ),
      withError('compile_source_str', field('Source file text', area('compile_source_str', 8))),
      withError('compile_command', field('Command', area('compile_command', 3, 'g++ -O2 -o main main.cpp'), 'Run by bash in the task directory.')),
      h('div', { class: 'grid' }, withError('compile_timeout', field('Timeout (seconds)', input('compile_timeout', { inputmode: 'numeric', value: '10' }), '0 means no limit.'))),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', null, 'Execute'),
      withError('execute_input', field('Input', area('execute_input', 4), 'Given on standard input.')),
      withError('execute_data', field('Data (zip)', input('execute_data', { type: 'file', accept: '.zip,application/zip' }), 'Unpacked in data/. Or give one file below.')),
      h('div', { class: 'grid pair' }, withError('execute_data_name', field('Data file name', input('execute_data_name', { maxlength: '255', placeholder: 'raw.dat' })))),
      withError('execute_data_str', field('Data file text', area('execute_data_str', 4))),
      withError('execute_command', field('Command', area('execute_command', 3, './main'))),
      h('div', { class: 'grid' }, withError('execute_timeout', field('Timeout (seconds)', input('execute_timeout', { inputmode: 'numeric', value: '10' }), '0 means no limit.'))),
      withError('execute_standard', field('Expected output', area('execute_standard', 4), 'Compared with the output when the task succeeds (trailing white space ignored).')),
    ),
    ),
    h(
      'details',
      { class: 'card', id: 'add-judge' },
      h('summary', null, 'Tests and checker (optional)'),
      h('p', { class: 'muted small' }, 'The task is compiled once, then each test runs in a fresh copy of the task directory, with its own verdict, time and memory.'),
      withError('tests_zip', field('Tests (zip)', input('tests_zip', { type: 'file', accept: '.zip,application/zip' }), 'Pairs <name>.in and <name>.out (or .ans).')),
      withError('tests', field('Tests (JSON)', area('tests', 4, '[{"name": "1", "input": "1 2", "output": "3"}]'), 'Or a JSON array of {"name", "input", "output"}; then leave the input and expected output above empty.')),
      h(
        'div',
        { class: 'grid' },
        withError('test_mode', field('Test mode', h('select', { name: 'test_mode', id: 'add-test_mode' }, h('option', { value: 'first_fail' }, 'Stop at the first failure'), h('option', { value: 'all' }, 'Run every test')))),
        withError('checker', field('Checker', h('select', { name: 'checker_kind', id: 'add-checker' }, CHECKERS.map(([value, label]) => h('option', { value }, label))))),
        withError('checker_error', field('Tolerance (float)', input('checker_error', { inputmode: 'decimal', placeholder: '1e-6' }), 'Absolute or relative.')),
      ),
      h('div', { class: 'grid pair' }, withError('checker_source_name', field('Checker file name', input('checker_source_name', { maxlength: '255', placeholder: 'check.cpp' })))),
      withError('checker_source_str', field('Checker source', area('checker_source_str', 6), "testlib's convention: checker <input> <output> <answer>; exit 0 OK, 1 wrong answer, 2 presentation error, 3 fail.")),
      withError('callback_url', field('Callback URL', input('callback_url', { type: 'url', placeholder: 'https://example.com/kv2-result' }), 'The finished task is POSTed there, signed (only to hosts the gateway allows).')),
    ),
    h(
      'details',
      { class: 'card' },
      h('summary', null, 'Limits and network (optional)'),
      ['compile', 'execute'].map((step) =>
        h(
          'div',
          { class: 'limits' },
          h('h3', null, step === 'compile' ? 'Compile step' : 'Execute step'),
          h('div', { class: 'grid' }, LIMITS.map(([name, label]) => withError(`${step}_${name}`, field(label, input(`${step}_${name}`, { inputmode: 'numeric', placeholder: 'executor default' }))))),
        ),
      ),
      h('label', { class: 'check' }, input('network', { type: 'checkbox' }), ' The task needs network access'),
    ),
    h('p', { class: 'error-text', id: 'add-problem', hidden: true }),
    h(
      'div',
      { class: 'actions form-actions' },
      h('button', { type: 'submit', id: 'add-submit' }, 'Submit task'),
      h('button', { type: 'button', class: 'secondary', id: 'add-example' }, 'Fill in the C++ example'),
      h('button', { type: 'reset', class: 'secondary' }, 'Clear'),
    ),
  );
  replace(context.root, h('div', { class: 'page-head' }, h('h1', null, 'Add a task')), form);

  const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement).value;
  const hasFile = (name: string) => ((form.elements.namedItem(name) as HTMLInputElement).files?.length ?? 0) > 0;
  const problem = form.querySelector<HTMLElement>('#add-problem')!;

  const check = (): boolean => {
    for (const message of errors.values()) message.hidden = true;
    const found: [string, string][] = [];
    for (const [name, label] of [['user', 'User id'], ['compile_timeout', 'Compile timeout'], ['execute_timeout', 'Execute timeout']]) {
      const reason = countProblem(value(name!), label!);
      if (reason) found.push([name!, reason]);
    }
    for (const [kind, label] of [['compile_source', 'Source'], ['execute_data', 'Data']] as const) {
      const name = value(`${kind}_name`);
      const text = value(`${kind}_str`);
      if (hasFile(kind)) continue;
      if (name && !text) found.push([`${kind}_str`, `${label} file text is missing: give the name and the text, or neither.`]);
      if (!name && text) found.push([`${kind}_name`, `${label} file name is missing: give the name and the text, or neither.`]);
      const nameProblem = name ? fileNameProblem(name, `${label} file name`) : undefined;
      if (nameProblem) found.push([`${kind}_name`, nameProblem]);
    }
    if (!value('execute_command').trim()) found.push(['execute_command', 'Give the command that runs the task.']);
    const tests = value('tests').trim();
    if (tests) {
      try {
        if (!Array.isArray(JSON.parse(tests))) throw new Error('not an array');
      } catch {
        found.push(['tests', 'Tests must be a JSON array of {"name", "input", "output"}.']);
      }
      if (hasFile('tests_zip')) found.push(['tests', 'Give the tests as a zip or as JSON, not both.']);
    }
    const checker = value('checker_kind');
    if (checker === 'float' && !(Number(value('checker_error')) > 0 && Number(value('checker_error')) <= 1)) found.push(['checker_error', 'The tolerance is a number above 0 and at most 1, such as 1e-6.']);
    if (checker === 'program') {
      if (!value('checker_source_name').trim()) found.push(['checker_source_name', 'Name the checker file: its extension says how it is built (.cpp, .c, .py).']);
      if (!value('checker_source_str').trim()) found.push(['checker_source_str', "Give the checker's source."]);
    }
    for (const step of ['compile', 'execute']) {
      for (const [name, label] of LIMITS) {
        const reason = positiveProblem(value(`${step}_${name}`), label);
        if (reason) found.push([`${step}_${name}`, reason]);
      }
    }
    for (const [name, reason] of found) {
      const message = errors.get(name);
      if (message) {
        message.textContent = reason;
        message.hidden = false;
      }
    }
    if (found.length) {
      problem.textContent = `Please correct ${found.length === 1 ? 'the field' : `the ${found.length} fields`} marked below.`;
      problem.hidden = false;
      document.getElementById(`add-${found[0]![0]}`)?.focus();
    } else problem.hidden = true;
    return found.length === 0;
  };

  form.querySelector('#add-example')!.addEventListener('click', () => {
    for (const [name, text] of Object.entries(CPP_EXAMPLE)) (form.elements.namedItem(name) as HTMLInputElement).value = text;
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!check()) return;
    const data = new FormData(form);
    // A checkbox is "on" or missing; the API takes true/false.
    data.delete('network');
    if ((form.elements.namedItem('network') as HTMLInputElement).checked) data.set('network', 'true');
    // Empty optional limits are left out rather than sent empty.
    for (const step of ['compile', 'execute']) for (const [name] of LIMITS) if (data.get(`${step}_${name}`) === '') data.delete(`${step}_${name}`);
    // The checker as the API takes it: exact, tokens, float:<error> or program; the judge's fields only when used.
    const checker = String(data.get('checker_kind') ?? 'exact');
    const judged = hasFile('tests_zip') || value('tests').trim() !== '' || checker !== 'exact' || value('test_mode') !== 'first_fail';
    data.delete('checker_kind');
    data.delete('checker_error');
    if (judged) data.set('checker', checker === 'float' ? `float:${value('checker_error').trim()}` : checker);
    else data.delete('test_mode');
    if (checker !== 'program') {
      data.delete('checker_source_name');
      data.delete('checker_source_str');
    }
    for (const name of ['tests', 'callback_url']) if (String(data.get(name) ?? '').trim() === '') data.delete(name);
    const button = form.querySelector<HTMLButtonElement>('#add-submit')!;
    button.disabled = true;
    button.textContent = 'Submitting…';
    try {
      const { id } = await api<{ id: string }>('POST', 'api/task', { body: data });
      context.navigate(`get?id=${id}`, { kind: 'success', text: `Task ${id} submitted successfully!` });
    } catch (error) {
      // The gateway names every bad field (HTTP 400): each is shown next to its field.
      for (const bad of error instanceof ApiError ? error.errors : []) {
        const message = errors.get(bad.field === 'checker' ? 'checker' : bad.field);
        if (message) {
          message.textContent = bad.message;
          message.hidden = false;
        }
      }
      problem.textContent = (error as Error).message;
      problem.hidden = false;
      button.disabled = false;
      button.textContent = 'Submit task';
    }
  });
};
