// How tasks look in the UI (issue 17): the verdict first, in the judges' words with a colour each
// (accepted green, wrong answer red, time limit orange...), the status second, in the original's words.
import { STATUS_NAMES, TaskStatus, type TaskVerdict } from '../../task/types';
import { verdictName } from '../../task/verdicts';
import { h } from './dom';

const STATUS_CLASSES: Record<number, string> = {
  [TaskStatus.PENDING]: 'pending',
  [TaskStatus.COMPILING]: 'active',
  [TaskStatus.COMPILE_FAILED]: 'failed',
  [TaskStatus.RUNNING]: 'active',
  [TaskStatus.RUN_FAILED]: 'failed',
  [TaskStatus.SUCCESS]: 'success',
  [TaskStatus.RETRYING]: 'retrying',
  [TaskStatus.CANCELLED]: 'cancelled',
  [TaskStatus.UNKNOWN_ERROR]: 'unknown',
};

export function statusName(status: number): string {
  return STATUS_NAMES[status as TaskStatus] ?? `Status ${status}`;
}

export function statusBadge(status: number): HTMLElement {
  return h('span', { class: `badge status-${STATUS_CLASSES[status] ?? 'unknown'}`, 'data-status': status }, statusName(status));
}

/** The verdict's badge; `large` for the top of a task's page. */
export function verdictBadge(verdict: TaskVerdict | string, large = false): HTMLElement {
  return h('span', { class: `badge verdict verdict-${verdict}${large ? ' large' : ''}`, 'data-verdict': verdict }, verdictName(verdict));
}

/**
 * What a task's first column says: its verdict once it has one, else (running, queued, cancelled, or an
 * Unknown error) its status, as the badge.
 */
export function outcomeBadge(task: { status: number; done: boolean; verdict?: string | null }, large = false): HTMLElement {
  if (task.verdict) return verdictBadge(task.verdict, large);
  const badge = statusBadge(task.status);
  if (large) badge.classList.add('large');
  return badge;
}
