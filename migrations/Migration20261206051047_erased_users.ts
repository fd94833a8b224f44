import { Migration } from '@mikro-orm/migrations';

export class Migration20261206051047_erased_users extends Migration {
  override name = 'Migration20261206051047_erased_users';

  override up(): void | Promise<void> {
    this.addSql(`alter table "users" add "erased_at" timestamptz null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "users" drop column "erased_at";`);
  }
}
