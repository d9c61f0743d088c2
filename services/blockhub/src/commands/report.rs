//! `blockhub report`: per-unit and city-wide figures as JSON, CSV or an
//! Excel workbook with Chinese column titles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use blockhub_rules::report::POST_CATEGORIES;
use blockhub_rules::{Policy, UnitReport, city_total, unit_reports};
use chrono::{Local, NaiveDate};
use clap::Args;
use rust_xlsxwriter::{Format, Workbook, Worksheet};

use crate::StoreArgs;
use crate::config::DataDir;

/// Flags of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only this unit (credit code).
    #[arg(long)]
    pub unit: Option<String>,
    /// As of this date (YYYY-MM-DD); default today.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Print one JSON object keyed by unit credit code.
    #[arg(long, required_unless_present_any = ["csv", "xlsx"])]
    pub json: bool,
    /// Write a CSV file (UTF-8 with BOM, so spreadsheet programs read the
    /// Chinese titles), one row per unit and a city-wide row.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write an Excel workbook: one sheet per view, header row frozen.
    #[arg(long)]
    pub xlsx: Option<PathBuf>,
    /// Thresholds (the 12-month window); default the statutory policy.
    #[arg(long, env = "BLOCKHUB_POLICY")]
    pub policy: Option<PathBuf>,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The per-unit columns, in the staffing office's words.
const UNIT_TITLES: [&str; 11] = [
    "统一社会信用代码",
    "单位名称",
    "编外用工控制数",
    "在职人数",
    "普通辅助",
    "技术技能",
    "执法辅助",
    "近12个月入职",
    "近12个月减少",
    "退役军人安置",
    "购买服务人数",
];

fn unit_row(code: &str, report: &UnitReport) -> Vec<String> {
    let mut row = vec![
        code.to_string(),
        report.name.clone(),
        report.quota.to_string(),
        report.headcount.to_string(),
    ];
    for category in POST_CATEGORIES {
        row.push(
            report
                .by_post
                .get(category)
                .copied()
                .unwrap_or(0)
                .to_string(),
        );
    }
    row.extend([
        report.hired_last_12m.to_string(),
        report.left_last_12m.to_string(),
        report.veteran_placements.to_string(),
        report.purchased_service_staff.to_string(),
    ]);
    row
}

/// Runs `report`.
pub async fn run(data: &DataDir, args: ReportArgs) -> Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => Policy::from_file(path)?,
        None => Policy::default(),
    };
    let as_of = args.as_of.unwrap_or_else(|| Local::now().date_naive());
    let store = args.store.open_existing(data).await?;
    let facts = store.rule_facts().await?;
    store.close().await;
    let mut reports = unit_reports(&facts, as_of, &policy);
    if let Some(unit) = &args.unit {
        reports.retain(|code, _| code == unit);
        if reports.is_empty() {
            bail!("no unit {unit} in the quota list or the roster");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if let Some(path) = &args.csv {
        write_csv(path, &reports).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote {}.", path.display());
    }
    if let Some(path) = &args.xlsx {
        write_xlsx(path, &reports, as_of).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote {}.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_csv(path: &Path, reports: &BTreeMap<String, UnitReport>) -> Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, "\u{feff}".as_bytes())?;
    let mut writer = csv::Writer::from_writer(file);
    writer.write_record(UNIT_TITLES)?;
    for (code, report) in reports {
        writer.write_record(unit_row(code, report))?;
    }
    let mut total = unit_row("", &city_total(reports));
    total[1] = "全市合计".into();
    writer.write_record(total)?;
    writer.flush()?;
    Ok(())
}

fn header(sheet: &mut Worksheet, titles: &[&str], bold: &Format) -> Result<()> {
    for (column, title) in titles.iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, *title, bold)?;
        let width = if column < 2 { 24.0 } else { 14.0 };
        sheet.set_column_width(column as u16, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn write_cells(sheet: &mut Worksheet, row: u32, cells: &[String], numeric_from: u16) -> Result<()> {
    for (column, cell) in cells.iter().enumerate() {
        let column = column as u16;
        match cell.parse::<f64>() {
            Ok(number) if column >= numeric_from => sheet.write_number(row, column, number)?,
            _ => sheet.write_string(row, column, cell)?,
        };
    }
    Ok(())
}

/// The workbook: 单位汇总 (one row per unit, a city-wide row last),
/// 岗位类别 (active posts per unit and category, one row each) and 全市汇总
/// (the city's figures, one per row).
fn write_xlsx(path: &Path, reports: &BTreeMap<String, UnitReport>, as_of: NaiveDate) -> Result<()> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();

    let sheet = workbook.add_worksheet().set_name("单位汇总")?;
    header(sheet, &UNIT_TITLES, &bold)?;
    let mut row = 1;
    for (code, report) in reports {
        write_cells(sheet, row, &unit_row(code, report), 2)?;
        row += 1;
    }
    let total = city_total(reports);
    let mut total_row = unit_row("", &total);
    total_row[1] = "全市合计".into();
    write_cells(sheet, row, &total_row, 2)?;

    let sheet = workbook.add_worksheet().set_name("岗位类别")?;
    header(
        sheet,
        &["统一社会信用代码", "单位名称", "岗位类别", "在职人数"],
        &bold,
    )?;
    let mut row = 1;
    for (code, report) in reports {
        for (category, count) in &report.by_post {
            let cells = [
                code.clone(),
                report.name.clone(),
                category.clone(),
                count.to_string(),
            ];
            write_cells(sheet, row, &cells, 3)?;
            row += 1;
        }
    }

    let sheet = workbook.add_worksheet().set_name("全市汇总")?;
    header(sheet, &["项目", "数值"], &bold)?;
    let mut figures = vec![
        ("统计日期".to_string(), as_of.to_string()),
        ("单位数".to_string(), reports.len().to_string()),
    ];
    for (title, value) in UNIT_TITLES[2..].iter().zip(&unit_row("", &total)[2..]) {
        figures.push((title.to_string(), value.clone()));
    }
    for (index, (title, value)) in figures.iter().enumerate() {
        write_cells(sheet, index as u32 + 1, &[title.clone(), value.clone()], 1)?;
    }
    workbook.save(path)?;
    Ok(())
}
