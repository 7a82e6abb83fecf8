// The resource stack of the composition roots (lifecycle.ts), alone: closes run newest first, a
// close that fails does not stop the others, a resource that cannot open is a StartupError naming
// it and the key to check, and unwinding twice closes nothing twice.
import t from 'tap'
import { StartupError } from '../../src/errors.js'
import { ResourceStack, startupError } from '../../src/lifecycle.js'

t.test('unwinding closes newest first, and goes on past a close that fails', async (t) => {
  const stack = new ResourceStack()
  const closed: string[] = []
  stack.defer('redis', () => {
    closed.push('redis')
  })
  await stack.open(
    'listen 127.0.0.1:8080',
    () => 'server',
    (s) => {
      closed.push(s)
    },
  )
  stack.defer('timer', () => {
    closed.push('timer')
    throw new Error('stuck')
  })
  const failures: string[] = []
  await stack.unwind((what, err) => failures.push(`${what}: ${(err as Error).message}`))
  t.same(closed, ['timer', 'server', 'redis'])
  t.same(failures, ['timer: stuck'])
  await stack.unwind()
  t.same(closed, ['timer', 'server', 'redis'], 'a second unwinding closes nothing again')
})

t.test('a resource that cannot open is a StartupError naming it; nothing of it is pushed', async (t) => {
  const stack = new ResourceStack()
  const closed: string[] = []
  stack.defer('redis', () => {
    closed.push('redis')
  })
  const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' })
  const err = await stack
    .open(
      'admin 127.0.0.1:8081',
      () => Promise.reject(inUse),
      () => {
        closed.push('admin')
      },
      'admin.port',
    )
    .catch((e: unknown) => e)
  t.type(err, StartupError)
  t.equal((err as StartupError).what, 'admin 127.0.0.1:8081')
  t.match(
    (err as Error).message,
    /^admin 127\.0\.0\.1:8081: address already in use \(EADDRINUSE\).*check `admin\.port`$/,
  )
  await stack.unwind()
  t.same(closed, ['redis'], 'only what had opened is closed')
})

t.test('nothing opens once unwinding has begun', async (t) => {
  const stack = new ResourceStack()
  await stack.unwind()
  await t.rejects(
    stack.open(
      'late',
      () => 1,
      () => {},
    ),
    StartupError,
  )
})

t.test('start errors read as an operator needs them', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['EACCES', Object.assign(new Error('x'), { code: 'EACCES' }), /permission denied \(EACCES\)/],
    ['EADDRNOTAVAIL', Object.assign(new Error('x'), { code: 'EADDRNOTAVAIL' }), /no such local address/],
    ['other', new Error('boom'), /^listen 1\.2\.3\.4:80: boom$/],
  ]
  for (const [name, cause, want] of cases)
    t.match(startupError('listen 1.2.3.4:80', cause).message, want, name)
  const already = new StartupError('x', 'y')
  t.equal(startupError('z', already), already, 'a StartupError passes through unchanged')
})
