/**
 * Turns `alert` deliveries into a Slack message (the spec's "Example: Slack Notifications"), posted with
 * ofetch to an incoming-webhook URL. Built on the express-receiver example: signatures verified, 200 at
 * once, each delivery posted at most once. Other event types are acknowledged and ignored.
 */
import { type $Fetch, FetchError, ofetch } from 'ofetch';
import type { AlertData } from '../../src/index.js'; // @zta/webhooks
import { createReceiver, type Receiver, type ReceiverOptions } from '../express-receiver/app.js';

/** The message shape the spec's example sends: a plain-text fallback and one mrkdwn section. */
export interface SlackMessage {
  text: string;
  blocks: { type: 'section'; text: { type: 'mrkdwn'; text: string } }[];
}

/** The spec's message for an alert, with the alert name escaped as Slack requires (`&`, `<`, `>`). */
export function alertMessage(data: AlertData): SlackMessage {
  const name = escapeMrkdwn(data.alertName);
  return {
    text: `🚨 Alert: ${name}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*${name}*\nCurrent: ${data.currentValue}\nThreshold: ${data.threshold}`,
        },
      },
    ],
  };
}

/** Slack's three control characters; everything else is literal in mrkdwn text. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export interface SlackAlertOptions
  extends Pick<ReceiverOptions, 'secret' | 'getSecret' | 'path' | 'dedupe' | 'onError'> {
  /** The Slack incoming-webhook URL (SLACK_WEBHOOK_URL). It is a credential: it is never logged. */
  slackWebhookUrl: string;
  /** The client to post with, e.g. `ofetch.create({ dispatcher })` to trust a test CA. Default `ofetch`. */
  fetch?: $Fetch;
  /** Told after each message Slack accepted. */
  onPosted?: (message: SlackMessage, alert: AlertData) => void;
}

export function createSlackAlert(options: SlackAlertOptions): Receiver {
  const post = options.fetch ?? ofetch;
  const url = options.slackWebhookUrl;
  if (!/^https:\/\//.test(url)) throw new TypeError('createSlackAlert: slackWebhookUrl must be an HTTPS URL');

  return createReceiver({
    ...(options.secret !== undefined && { secret: options.secret }),
    ...(options.getSecret && { getSecret: options.getSecret }),
    ...(options.path && { path: options.path }),
    ...(options.dedupe && { dedupe: options.dedupe }),
    ...(options.onError && { onError: options.onError }),
    process: async ({ payload }) => {
      if (payload.event !== 'alert') return;
      const message = alertMessage(payload.data);
      try {
        await post(url, {
          method: 'POST',
          body: message, // sent as JSON
          responseType: 'text', // Slack answers `ok`
          timeout: 5_000,
          retry: 2, // on 408, 409, 425, 429 and 5xx
          retryDelay: 1_000,
        });
      } catch (error) {
        // ofetch's message includes the URL, which is a credential: report the status only.
        const status = error instanceof FetchError ? error.statusCode : undefined;
        throw new Error(status ? `Slack answered ${status}` : 'Could not reach Slack', {
          cause: status ? undefined : scrub(error, url),
        });
      }
      options.onPosted?.(message, payload.data);
    },
  });
}

function scrub(error: unknown, url: string): string {
  return (error instanceof Error ? error.message : String(error)).replaceAll(url, '<SLACK_WEBHOOK_URL>');
}
