/**
 * The placeholders a system prompt may hold, filled in for each reply. The user's identity reaches the model only
 * this way, and only where the operator put `{{userId}}`: never a token, never anything the user typed.
 */
export const PROMPT_PLACEHOLDERS = {
  /** The id of the user whose message the reply answers (the token's `sub`). */
  userId: '{{userId}}',
  /** Today's date in UTC, `YYYY-MM-DD` (models do not know it, and todo lists need it). */
  date: '{{date}}',
} as const;

/** The system prompt of one reply; undefined when none is configured. */
export function systemPromptFor(template: string | undefined, userId: string, now = new Date()): string | undefined {
  if (!template) return undefined;
  return template.replaceAll(PROMPT_PLACEHOLDERS.userId, userId).replaceAll(PROMPT_PLACEHOLDERS.date, now.toISOString().slice(0, 10));
}
