// API token checks and the mapping of every failure to a JSON answer (status, result code), and the CLI
// client's zipping of files and directories.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { unzipSync } from 'fflate';
import { submissionFields, zipPaths } from '../../src/cli/task';
import { ConfigError, InvalidInputError, NotFoundError, TooLargeError, UnavailableError } from '../../src/common/errors';
import { OPEN_CALLER, TokenCheck, adminTokens, parseTokens, readTokensFile } from '../../src/gateway/api/auth';
import { checkOwner, claimSubmission, restrictSearch } from '../../src/gateway/api/ownership';
import { BadRequestError, BodyTooLargeError, ForbiddenError, JudicatorAnswerError, UnauthorizedError, errorAnswer } from '../../src/gateway/api/errors';

describe('API tokens', () => {
  it('accepts only the configured bearer tokens; none configured means open', () => {
    assert.deepEqual(new TokenCheck([]).identify(undefined), OPEN_CALLER);
    const check = new TokenCheck(adminTokens(['alpha', '0123']));
    check.check('Bearer alpha');
    check.check('bearer   0123 ');
    for (const header of [undefined, '', 'alpha', 'Basic alpha', 'Bearer alph', 'Bearer 123', 'Bearer alpha2']) {
      assert.throws(() => check.check(header), UnauthorizedError, String(header));
    }
  });

  it('tells an admin token from a user token; a required check with no token refuses everyone', () => {
    const check = new TokenCheck([...adminTokens(['root']), { token: 'u7', owner: 7 }, { token: 'u0', owner: 0 }]);
    assert.deepEqual(check.identify('Bearer root'), { admin: true, open: false });
    assert.deepEqual(check.identify('Bearer u7'), { admin: false, user: 7 });
    assert.deepEqual(check.identify('Bearer u0'), { admin: false, user: 0 });
    assert.deepEqual(check.counts, { tokens: 3, users: 2 });
    // A token both an admin's (a flag) and a user's (a file line): the admin wins.
    assert.deepEqual(new TokenCheck([{ token: 'x', owner: 3 }, ...adminTokens(['x'])]).identify('Bearer x'), { admin: true, open: false });
    const closed = new TokenCheck([], true);
    assert.equal(closed.enabled, true);
    assert.throws(() => closed.identify('Bearer anything'), UnauthorizedError);
  });

  it('reads a tokens file: <token>, <token> admin or <token> <user id> a line; comments and blanks skipped', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-tokens-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, '# tokens\n a1 \n\nb2 # second\n#c3\nc4 admin\nd5   42\n');
    assert.deepEqual(readTokensFile(file), [
      { token: 'a1', owner: 'admin' },
      { token: 'b2', owner: 'admin' },
      { token: 'c4', owner: 'admin' },
      { token: 'd5', owner: 42 },
    ]);
    assert.throws(() => readTokensFile(path.join(dir, 'missing')), ConfigError);
    for (const bad of ['t1 user', 't1 -1', 't1 2147483648', 't1 1 2', 't1 1\nt1 2']) {
      assert.throws(() => parseTokens(bad, 'tokens'), (error: Error) => error instanceof ConfigError && /tokens line \d/.test(error.message) && !error.message.includes('t1'), bad);
    }
  });
});

describe('what a caller may touch', () => {
  const user7 = { admin: false, user: 7 } as const;
  it('a user token submits as its user only; a submission without user becomes its own', () => {
    const fields: Record<string, unknown> = { execute_command: 'true' };
    claimSubmission(fields, user7);
    assert.equal(fields.user, 7);
    claimSubmission({ user: '7' }, user7);
    claimSubmission({ user: ' +7 ' }, user7);
    assert.throws(() => claimSubmission({ user: 8 }, user7), ForbiddenError);
    assert.throws(() => claimSubmission({ user: '0' }, user7), ForbiddenError);
    // A malformed id is the parser's to refuse, with its own message.
    claimSubmission({ user: 'seven' }, user7);
    const admin: Record<string, unknown> = { user: 8 };
    claimSubmission(admin, OPEN_CALLER);
    assert.equal(admin.user, 8);
  });

  it("another user's task and list are refused; a list is cut to the caller's tasks", () => {
    checkOwner(7, user7, 'id');
    checkOwner(8, OPEN_CALLER, 'id');
    assert.throws(() => checkOwner(8, user7, 'id'), ForbiddenError);
    assert.deepEqual(restrictSearch<{ limit?: number; user?: number }>({ limit: 5 }, user7), { limit: 5, user: 7 });
    assert.deepEqual(restrictSearch({ user: 7 }, user7), { user: 7 });
    assert.throws(() => restrictSearch({ user: 8 }, user7), ForbiddenError);
    assert.deepEqual(restrictSearch({ user: 8 }, OPEN_CALLER), { user: 8 });
  });
});

describe('errorAnswer', () => {
  it('maps each failure to an HTTP status and a result code, never 500', () => {
    const cases: [unknown, number, number][] = [
      [new InvalidInputError('x'), 200, 4],
      [new TooLargeError('x'), 200, 3],
      [new BodyTooLargeError('x'), 413, 3],
      [new NotFoundError('x'), 404, 2],
      [new UnauthorizedError('x'), 401, 5],
      [new ForbiddenError('x'), 403, 5],
      [new BadRequestError('x'), 400, 4],
      [new UnavailableError('x'), 503, 1],
      [new JudicatorAnswerError(2, 'x'), 200, 2],
      [Object.assign(new Error('big'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }), 413, 3],
      [Object.assign(new Error('big file'), { code: 'FST_REQ_FILE_TOO_LARGE', statusCode: 413 }), 413, 3],
      [Object.assign(new Error('bad json'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 }), 400, 4],
      [Object.assign(new Error('type'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), 415, 4],
      [new TypeError('a bug'), 200, 1],
    ];
    for (const [error, status, result] of cases) {
      const answer = errorAnswer(error);
      assert.equal(answer.status, status, String(error));
      assert.equal(answer.result, result, String(error));
      assert.ok(answer.message.length > 0);
    }
  });
});

describe('kv2 task submit fields', () => {
  it('zips files by name and directories by content; a lone .zip goes as it is', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv2-zip-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.mkdirSync(path.join(dir, 'src', 'lib'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', 'main.c'), 'int main(){}');
    fs.writeFileSync(path.join(dir, 'src', 'lib', 'x.h'), '#pragma once');
    fs.writeFileSync(path.join(dir, 'extra.txt'), 'extra');
    const zipped = unzipSync(Buffer.from(zipPaths([path.join(dir, 'src'), path.join(dir, 'extra.txt')], '--source')!, 'base64'));
    assert.deepEqual(Object.keys(zipped).sort(), ['extra.txt', 'lib/x.h', 'main.c']);
    const zipFile = path.join(dir, 'ready.zip');
    fs.writeFileSync(zipFile, Buffer.from(zipPaths([path.join(dir, 'extra.txt')], '--data')!, 'base64'));
    assert.equal(zipPaths([zipFile], '--data'), fs.readFileSync(zipFile).toString('base64'));
    assert.throws(() => zipPaths([path.join(dir, 'nope')], '--source'), InvalidInputError);
    assert.equal(zipPaths([], '--source'), undefined);
  });

  it('maps the flags to the API fields', () => {
    const fields = submissionFields({ execute: './main', user: ['7'], input: 'World', compileMemory: ['1048576'], network: true });
    assert.deepEqual(fields, {
      user: '7',
      compile_command: '',
      compile_timeout: '30',
      execute_command: './main',
      execute_timeout: '10',
      execute_input: 'World',
      execute_standard: '',
      compile_memory: '1048576',
      network: true,
    });
    assert.throws(() => submissionFields({}), /--execute/);
  });
});
