import { Migration } from '@mikro-orm/migrations';

export class Migration20261122063344_streaming_replies_index extends Migration {
  override name = 'Migration20261122063344_streaming_replies_index';

  override up(): void | Promise<void> {
    this.addSql(`create index "messages_streaming_updated_at_index" on "messages" ("updated_at") where "status" = 'streaming';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "messages_streaming_updated_at_index";`);
  }
}
