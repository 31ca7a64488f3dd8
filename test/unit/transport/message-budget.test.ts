import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMessageBudget, parseMessageBudgetLimits } from '../../../server/transport/message-budget.js'

const limits = { messagesPerS: 4, bytesPerS: 1000, invalidPerS: 2 }

test('a bucket holds one second of messages and refills continuously', () => {
  const budget = createMessageBudget(limits, 0)
  for (let i = 0; i < 4; i++) assert.equal(budget.chargeMessage(10, 0), undefined)
  assert.equal(budget.chargeMessage(10, 0), 'messages', 'the fifth message in the same instant')
  assert.equal(budget.chargeMessage(10, 250), undefined, 'a quarter second later one more fits')
  assert.equal(budget.chargeMessage(10, 250), 'messages')
  assert.equal(budget.chargeMessage(10, 10_000), undefined, 'idle time refills it')
})

test('bytes are charged per message, and an overdraw takes nothing from the budget', () => {
  const budget = createMessageBudget({ ...limits, messagesPerS: 100 }, 0)
  assert.equal(budget.chargeMessage(900, 0), undefined)
  assert.equal(budget.chargeMessage(200, 0), 'bytes')
  assert.equal(budget.chargeMessage(100, 0), undefined, 'the refused 200 bytes were not taken')
})

test('invalid messages have their own, smaller budget', () => {
  const budget = createMessageBudget(limits, 0)
  assert.equal(budget.chargeInvalid(0), true)
  assert.equal(budget.chargeInvalid(0), true)
  assert.equal(budget.chargeInvalid(0), false)
  assert.equal(budget.chargeInvalid(500), true)
})

test('a clock that goes backwards refills nothing', () => {
  const budget = createMessageBudget(limits, 1000)
  for (let i = 0; i < 4; i++) budget.chargeMessage(1, 1000)
  assert.equal(budget.chargeMessage(1, 0), 'messages')
})

test('limits are checked when a route is defined, naming the option', () => {
  assert.throws(() => parseMessageBudgetLimits({ ...limits, invalidPerS: 0 }, 100), /budget\.invalidPerS/)
  assert.throws(
    () => parseMessageBudgetLimits({ ...limits, messagesPerS: Number.NaN }, 100),
    /budget\.messagesPerS/,
  )
  assert.throws(() => parseMessageBudgetLimits(limits, 4096), /budget\.bytesPerS .* maxPayloadBytes/)
  assert.ok(Object.isFrozen(parseMessageBudgetLimits(limits, 1000)))
})
