// Task statuses as the UI shows them: the original's words, with a colour class each.
import { STATUS_NAMES, TaskStatus } from '../../task/types';
import { h } from './dom';

const CLASSES: Record<number, string> = {
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
  return h('span', { class: `badge status-${CLASSES[status] ?? 'unknown'}`, 'data-status': status }, statusName(status));
}
