import { Migration } from '@mikro-orm/migrations';

// The retention sweep finds conversations idle since before a cutoff, whoever owns them: without this index it
// would read the whole table. (The snapshot written with it also records the streaming-replies index of the
// previous migration, which it lacked.)
export class Migration20261206045411_retention_index extends Migration {
  override name = 'Migration20261206045411_retention_index';

  override up(): void | Promise<void> {
    this.addSql(`create index "conversations_updated_at_index" on "conversations" ("updated_at");`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index "conversations_updated_at_index";`);
  }
}
